"""``python -m lightning_review evaluate``: human reviews + system reviews -> result.json, report.md, charts."""

from __future__ import annotations

import asyncio
import json
import math
from collections import defaultdict
from pathlib import Path

from ..data.readers import read_records
from ..data.records import RecordError, iter_json_objects
from .evaluator import EvaluationInput, evaluate as run_evaluation


def load_input(human_file: str, systems: dict[str, str], data_format: str = "auto",
               excerpt_control: bool = True) -> EvaluationInput:
    """Human reviews grouped by paper (a record id ``paper#i`` belongs to paper ``paper``); each system's JSONL of
    ``{"id": paper id, "review": text}`` (the format ``generate`` writes; its ``truncated`` and ``finish_reason``
    are kept, to flag systems that saw cut papers or were cut off themselves)."""
    papers: dict[str, list[str]] = defaultdict(list)
    texts: dict[str, str] = {}
    for record in read_records(human_file, format=data_format, policy="skip").records:
        paper_id = record.id.split("#")[0]
        papers[paper_id].append(record.review)
        texts.setdefault(paper_id, record.paper)
    outputs, cut = {}, {}
    for name, path in systems.items():
        reviews = {}
        cut[name] = {"paper_truncated": [], "review_at_length_limit": []}
        for where, obj in iter_json_objects(path):
            if not isinstance(obj.get("review"), str) or "id" not in obj:
                raise RecordError(f"{where}: a system output line needs 'id' (the paper) and 'review'")
            reviews[str(obj["id"])] = obj["review"]
            if obj.get("truncated"):  # generate's fields; other sources may not have them
                cut[name]["paper_truncated"].append(str(obj["id"]))
            if obj.get("finish_reason") == "length":
                cut[name]["review_at_length_limit"].append(str(obj["id"]))
        missing = sorted(set(reviews) - set(papers))
        if missing:
            raise RecordError(f"{path}: {len(missing)} reviews of papers without human reviews in {human_file} "
                              f"(e.g. {missing[:3]}); ids must be the papers' ids")
        outputs[name] = reviews
    return EvaluationInput(dict(papers), outputs, texts if excerpt_control else {}, cut)


def make_judges(specs: list[str], cache_file: str, concurrency: int, budget_kw: dict) -> list:
    from ..answer_cache import AnswerCache
    from .chat_judge import Budget, ChatJudge

    judges = []
    for spec in specs:
        if spec == "embedding":
            from .embedding_judge import EmbeddingJudge

            judges.append(EmbeddingJudge())
        elif spec.startswith("openai:"):
            model, _, base_url = spec.removeprefix("openai:").partition("@")
            judges.append(ChatJudge(model, AnswerCache(cache_file), base_url=base_url or None,
                                    concurrency=concurrency, budget=Budget(**budget_kw)))
        else:
            raise ValueError(f"unknown judge {spec!r}: 'embedding' or 'openai:<model>[@<base_url>]'")
    return judges


def evaluate(human_file: str, systems: dict[str, str], judges: list[str] | None = None,
             output_dir: str = "evaluation", cache_file: str | None = None, threshold: float = 7.0,
             concurrency: int = 8, max_calls: int | None = None, max_tokens: int | None = None,
             max_dollars: float | None = None, dollars_per_1k_prompt: float = 0.0,
             dollars_per_1k_completion: float = 0.0, resamples: int = 10_000, data_format: str = "auto",
             excerpt_control: bool = True) -> dict:
    """Judge every system's reviews against the human ones; write result.json, report.md and PNG charts.

    Args:
        human_file: the papers' human reviews (any data format; several reviews per paper allowed).
        systems: {system name: JSONL of {"id": paper id, "review": ...}}, e.g. our model and GPT-4.
        judges: "embedding" (offline) and/or "openai:<model>[@<base_url>]" (key from OPENAI_API_KEY).
        output_dir: where the results go.
        cache_file: SQLite cache of judge calls (default: <output_dir>/judge_cache.sqlite).
        threshold: the hit threshold for comparisons (6, 7 and 8 are all reported).
        concurrency: chat judge calls in flight.
        max_calls: stop (resumably) before more calls than this.
        max_tokens: stop (resumably) before more tokens than this.
        max_dollars: stop (resumably) before spending more than this.
        dollars_per_1k_prompt: the judge's price, for the dollar budget and the report.
        dollars_per_1k_completion: the judge's price, for the dollar budget and the report.
        resamples: bootstrap resamples for the win-rate intervals.
        data_format: the human file's format.
        excerpt_control: judge each paper's own opening (cut to its human reviews' length) as a control system,
            to show whether a judge rewards copying the paper (one more system's calls for chat judges).
    """
    from .chat_judge import BudgetExceeded
    from .report import charts, markdown

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = load_input(human_file, systems, data_format, excerpt_control)
    budget = {"max_calls": max_calls, "max_tokens": max_tokens, "max_dollars": max_dollars,
              "dollars_per_1k_prompt": dollars_per_1k_prompt, "dollars_per_1k_completion": dollars_per_1k_completion}
    judge_objects = make_judges(judges or ["embedding"], cache_file or str(out / "judge_cache.sqlite"),
                                concurrency, budget)
    try:
        result = asyncio.run(run_evaluation(data, judge_objects, threshold, resamples))
    except BudgetExceeded as exc:
        raise SystemExit(f"stopped: {exc}. Every answer so far is cached in {cache_file or out / 'judge_cache.sqlite'}"
                         "; run the same command again (with a larger budget) to continue.") from None
    (out / "result.json").write_text(json.dumps(_finite(result), indent=1, allow_nan=False))
    (out / "report.md").write_text(markdown(result))
    written = charts(result, out)
    print(f"wrote {out / 'result.json'}, {out / 'report.md'}" + "".join(f", {p}" for p in written))
    return result


def _finite(value):
    """NaN (an undefined agreement, e.g. a judge that never varies) becomes null: result.json stays strict JSON."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
