"""``python -m lightning_review generate``: a review for every paper of a JSONL, from a local model or an API.

    python -m lightning_review generate --papers test.jsonl --adapter_dir runs/adapter --output_file ours.jsonl
    python -m lightning_review generate --papers test.jsonl --model_dir merged/ --quantize true
    python -m lightning_review generate --papers test.jsonl --api_model gpt-4-1106-preview --output_file gpt4.jsonl
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from pathlib import Path
from typing import Literal

from ..answer_cache import missing_dirs, remove_empty_dirs
from ..artifacts.model_limits import MAX_SEQ_LENGTH, ROPE_POSITIONS
from ..artifacts.resumable_jsonl import output_files
from ..data.prompt import DEFAULT_SYSTEM_PROMPT
from ..data.rating_line import rating_request
from ..data.records import PAPER_LINE, RecordError, iter_json_objects, paper_id_of, text_field
from ..errors import UserError, count_problem
from ..safe_paths import refuse_output_over_input
from .decoding import DecodingSettings
from .output import ReviewsFile


def unique_papers(path: str) -> tuple[list[tuple[str, str]], int]:
    """(paper id, paper) pairs of a papers JSONL. Every line needs an id: evaluate matches reviews to human reviews by
    paper id, so a made-up one would match nothing. The paper id is the id up to a ``#`` as everywhere in the project
    (``paper#2`` is a line of ``paper``). A repeated paper id with the same paper is reviewed once (counted), with
    another paper it is an error."""
    seen: dict[str, str] = {}
    papers, repeated, lines, missing = [], 0, 0, []
    for where, obj in iter_json_objects(path):
        lines += 1
        paper = text_field(obj, "paper", where, PAPER_LINE)
        raw_id = obj.get("id")
        paper_id = paper_id_of(raw_id)
        if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)) or not paper_id.strip():
            missing.append(where)
            continue
        if paper_id in seen:
            if seen[paper_id] != paper:
                raise RecordError(f"{where}: id {paper_id!r} was used before for another paper; ids name the papers "
                                  "the reviews belong to, make them unique", "id_conflict")
            repeated += 1
            continue
        seen[paper_id] = paper
        papers.append((paper_id, paper))
    if missing:
        raise RecordError(f"{missing[0]}: no 'id' (a non-empty string or integer); {len(missing)} of {lines} papers "
                          "lack one. evaluate matches each review to the human reviews by this id: give every line "
                          "the id its human reviews carry", "missing_id")
    return papers, repeated


def parse_shard(shard: str) -> tuple[int, int]:
    index, _, count = shard.partition("/")
    if not (index.isdigit() and count.isdigit() and int(index) < int(count)):
        raise UserError(f"--shard must be i/n with 0 <= i < n (e.g. 0/2 and 1/2 for two GPUs), got {shard!r}")
    return int(index), int(count)


def run_setting_problems(concurrency, batch_size, max_retries, limit, max_context=None,
                         api: bool = False, timeout_s=600.0) -> list[str]:
    """Each count out of its range, named before any model loads or call is made: --concurrency 0 would wait
    forever for a free slot, --batch_size 0 review nothing, --limit 0 read as no limit, a negative --max_context
    leave no room for any paper and one above MAX_SEQ_LENGTH (2**24) give positions RoPE's float32 cannot tell
    apart, --timeout_s 0 fail every call inside the HTTP library."""
    from ..openai_client import timeout_problem

    problems = []
    if max_context is not None and (isinstance(max_context, bool) or not isinstance(max_context, int)
                                    or max_context < 0):
        meaning = "0 (no cut: papers sent whole)" if api else "0 (the model's context, as when left out)"
        problems.append(f"--max_context must be {meaning} or a positive number of tokens, got {max_context!r}")
    elif max_context is not None and max_context > MAX_SEQ_LENGTH:
        problems.append(f"--max_context {max_context}: give at most {MAX_SEQ_LENGTH:,} (2**24) tokens: "
                        f"{ROPE_POSITIONS}, so further tokens would share a position's rotation")
    for flag, value, least, what in (("--concurrency", concurrency, 1, "API calls in flight, e.g. 8"),
                                     ("--batch_size", batch_size, 1, "local papers a batch, e.g. 1"),
                                     ("--max_retries", max_retries, 0, "retries of a failed API call, e.g. 5"),
                                     ("--limit", limit, 1, "the first N papers; leave it out for all")):
        if value is None and flag == "--limit":
            continue
        if problem := count_problem(flag, value, least, what):
            problems.append(problem)
    if problem := timeout_problem(timeout_s, example=600):
        problems.append(problem)
    return problems


def generate(papers: str, output_file: str = "reviews.jsonl", model_dir: str | None = None,
             adapter_dir: str | None = None, checkpoint_dir: str | None = None, api_model: str | None = None,
             base_url: str | None = None, quantize: bool = False,
             dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto", max_new_tokens: int = 512,
             temperature: float = 0.0, top_p: float = 1.0, repetition_penalty: float = 1.0, seed: int = 0,
             batch_size: int = 1, max_context: int | None = None, system_prompt: str = DEFAULT_SYSTEM_PROMPT,
             concurrency: int = 8, cache_file: str | None = None, encoding: str | None = None,
             max_retries: int = 5, limit: int | None = None, shard: str | None = None,
             overwrite: bool = False, rating_scale: str | None = "1-10", timeout_s: float = 600.0) -> dict:
    """Write a review of every paper to ``output_file`` (JSONL); a rerun skips the ids already written.

    Args:
        papers: JSONL with ``paper`` and ``id`` a line. Every line needs its id (a string or integer): the evaluator
            matches each review to the human reviews by id, so a line without one is an error naming file:line
            (a made-up id would match no human review). The paper id is the id up to a ``#`` (``paper#2`` is a line
            of ``paper``); a repeated paper id with the same paper is reviewed once.
        output_file: where reviews are appended, one JSON object a line. It may not be an input (papers, a model
            or adapter file). Locked while a run writes it (``<output_file>.lock``): a second run on the same
            file stops at once with an error. A rerun warns about ids written more than once (and counts them in
            ``duplicate_ids_in_output``): evaluate needs one review per id.
        model_dir: a merged export or any Llama checkpoint directory (local backend).
        adapter_dir: an adapter written by lightning_review (local backend; base from its record or checkpoint_dir).
        checkpoint_dir: the adapter's base model directory, when it moved since training.
        api_model: a model of an OpenAI-compatible API (GPT-4, ``ft:gpt-3.5-turbo:...``): the API backend. The key
            is read from OPENAI_API_KEY, never from a flag.
        base_url: the API's address (default OPENAI_BASE_URL or OpenAI's). The output records it (without the
            user name, password, query or fragment of the address) beside api_model: a resume with another model
            or at another address is refused, so one file never mixes the reviews of two models or servers.
        quantize: local base weights in 4-bit NF4 (bitsandbytes) instead of ``dtype``.
        dtype: local weights' / compute dtype; auto is bfloat16 on a GPU and float32 on the CPU (where bfloat16 has
            no fast kernels).
        max_new_tokens, temperature, top_p, repetition_penalty, seed: decoding (temperature 0: greedy).
        batch_size: local papers per batch (ordered by length, longest first).
        max_context: tokens of prompt + review; papers are cut to fit, as in training. Default: the local model's
            context (its RoPE-scaled max_position_embeddings), 16,385 for an API model (0: send papers whole). At
            most 16,777,216 (2**24, lightning_review.artifacts.model_limits.MAX_SEQ_LENGTH), as every length setting.
        system_prompt: the system prompt of training.
        rating_scale: API backend: the system message asks the model to end its review with the rating line the
            training targets end with (``Rating: <n>``, a number on this low-high scale: 1-10 for ICLR's ratings,
            1-5 for ACL's), so ``evaluate`` can score its ratings; ``''`` sends the training system prompt alone
            (a model fine-tuned on it learnt the line from its targets). The local model's prompt is always the
            training prompt: it writes the line when it was trained with it. Either way ``rating`` is the line
            read back.
        concurrency: API calls in flight.
        cache_file: SQLite cache of API answers (default: beside output_file).
        encoding: tiktoken encoding of the API model when its name does not tell (cl100k_base, o200k_base).
        max_retries: API retries of a failed call (429, 5xx, timeouts), with the openai client's exponential backoff.
            A line on stderr says when a call is retried.
        limit: review only the first N papers (a trial run).
        shard: ``i/n``: this process reviews every n-th paper from the i-th (0-based), to spread a test set over n
            GPUs or machines (``CUDA_VISIBLE_DEVICES=i``, one output_file each; concatenate them for evaluate).
        overwrite: start the output file over instead of resuming it. The new reviews go to
            ``<output_file>.partial``, which replaces output_file only once every paper is reviewed: until then the
            old file is untouched, and an interrupted overwrite continues where it stopped when run again with
            ``--overwrite true``.
        timeout_s: API backend: seconds one call may take before it is retried (a review of max_new_tokens from a
            slow server can take minutes); a server that never answers stops the run after about
            (max_retries + 1) x timeout_s with an error naming its address.

    A failed API call (no server at the address, a timeout) ends the run with an error naming the address; the
    reviews written so far are kept and a rerun continues from them.
    """
    try:
        settings = DecodingSettings(max_new_tokens, temperature, top_p, repetition_penalty, seed)
    except UserError as exc:  # its messages start with the field's name, which is generate's flag
        raise UserError(f"--{exc}") from None
    if problems := run_setting_problems(concurrency, batch_size, max_retries, limit, max_context,
                                        api=api_model is not None, timeout_s=timeout_s):
        raise UserError("; ".join(problems))
    cache = api_cache_file(output_file, cache_file) if api_model is not None else None
    refuse_outputs_over_inputs(papers, output_file, model_dir, adapter_dir, checkpoint_dir, cache)
    items, repeated = unique_papers(papers)
    items = items[:limit] if limit else items
    if shard:
        index, count = parse_shard(shard)
        items = items[index::count]
    if api_model is not None:
        if model_dir or adapter_dir:
            raise UserError("--api_model is the API backend; leave --model_dir and --adapter_dir out (or "
                            "--api_model)")
        scale = parse_rating_scale(rating_scale)  # in the settings: a resumed run asks as the first one did
        from ..openai_client import check_api_address, require_api_key
        from .api import api_encoding, api_endpoint  # the server, recorded: a resume against another one is refused

        # every refusal before the lock, the reviews file or the answer cache is made: a refused run leaves nothing
        api_context = 16_385 if max_context is None else max_context or None  # 0: papers sent whole
        check_api_address(base_url)
        api_encoding(api_model, settings, api_context, encoding)
        require_api_key("give its address with --base_url (or OPENAI_BASE_URL)")

        run_settings = {"backend": "openai", "model": api_model, "endpoint": api_endpoint(base_url),
                        "max_context": api_context,
                        "rating_scale": list(scale) if scale else None, **settings.as_dict()}
    else:
        import torch

        from ..model.loading import dtype_name
        from .local import check_model_source

        check_model_source(model_dir, adapter_dir)
        dtype = dtype_name(dtype, "cuda" if torch.cuda.is_available() else "cpu")
        run_settings = {"backend": "local", "model": str(model_dir or adapter_dir), "base": checkpoint_dir,
                        "quantize": quantize, "dtype": None if quantize else dtype, "max_context": max_context,
                        **settings.as_dict()}
    made = missing_dirs(Path(output_file).parent)  # what ReviewsFile creates: a failed run removes them, where empty
    try:
        with ReviewsFile(output_file, run_settings, overwrite) as out:
            _report_existing(out)
            todo = [(i, p) for i, p in items if i not in out.done]
            summary = {"papers": len(items), "already_written": len(items) - len(todo), "repeated_ids": repeated,
                       "duplicate_ids_in_output": len(out.duplicates), "written": 0, "truncated": 0,
                       "prompt_tokens": 0, "generated_tokens": 0}
            if todo:
                started = time.perf_counter()
                if api_model is not None:
                    _run_api(todo, out, summary, run_settings, settings, system_prompt, base_url, concurrency,
                             cache, encoding, max_retries, timeout_s)
                else:
                    _run_local(todo, out, summary, settings, system_prompt, model_dir, adapter_dir, checkpoint_dir,
                               quantize, dtype, max_context, batch_size)
                seconds = time.perf_counter() - started
                summary["seconds"] = round(seconds, 2)
                # a run answered from the cache can take under a millisecond: no rate rather than a division by zero
                summary["generated_tokens_per_s"] = (round(summary["generated_tokens"] / seconds, 1) if seconds > 0
                                                     else None)
            out.finish()
    except BaseException:  # its reviews file is kept where it holds reviews (a rerun resumes it), as is the cache
        remove_empty_dirs(made)
        raise
    print(" ".join(f"{k}={v}" for k, v in summary.items()))
    return summary


def parse_rating_scale(text: str | None) -> tuple[float, float] | None:
    """``--rating_scale`` as (low, high): ``"1-10"`` -> (1.0, 10.0); empty or None asks for no rating line."""
    if text is None or not str(text).strip():
        return None
    match = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*-\s*(-?\d+(?:\.\d+)?)\s*", str(text))
    if match is None:
        raise UserError(f"--rating_scale: {text!r} is not a scale; give it as low-high (1-10 for ICLR's ratings, 1-5 "
                        "for ACL's), or '' to ask for no rating line")
    low, high = float(match.group(1)), float(match.group(2))
    try:
        rating_request(low, high)
    except UserError as exc:
        raise UserError(f"--rating_scale: {exc}") from None
    return low, high


def api_cache_file(output_file: str, cache_file: str | None) -> Path:
    return Path(cache_file) if cache_file else Path(output_file).with_suffix(".cache.sqlite")


def _input_files(*paths: str | None) -> list[Path]:
    """The files a run reads: a file as it is, every file under a directory (a model, an adapter)."""
    files = []
    for path in paths:
        if path is None:
            continue
        path = Path(path).expanduser()
        if path.is_dir():
            files.extend(p for p in path.rglob("*") if p.is_file())
        else:
            files.append(path)
    return files


def refuse_outputs_over_inputs(papers: str, output_file: str, model_dir: str | None, adapter_dir: str | None,
                               checkpoint_dir: str | None, cache_file: Path | None) -> None:
    """Before anything is written: no output (the reviews, their lock and partial file, the API cache) may be a
    file the run reads, under any name; ``--overwrite true`` would otherwise replace the papers."""
    inputs = _input_files(papers, model_dir, adapter_dir, checkpoint_dir)
    for output in output_files(output_file):
        refuse_output_over_input(output, inputs, "--output_file")
    refuse_output_over_input(cache_file, inputs, "--cache_file")


def _report_existing(out: ReviewsFile) -> None:
    """Say what a rerun found in the file it resumes: on stderr, as every warning and note, so that stdout keeps
    only the summary line."""
    if out.repaired:
        print(f"warning: {out.path} ended in a partly written line (an interrupted run); it was removed and that "
              "paper is reviewed again", file=sys.stderr)
    if out.duplicates:
        print(f"warning: {out.path} has {len(out.duplicates)} review line(s) of an id written before (the first at "
              f"{out.duplicates[0]}): two runs wrote to it at once, or it was concatenated twice. evaluate needs one "
              "review per id: keep one line per id, or rerun with --overwrite true", file=sys.stderr)
    note = out.partial_note()
    if note:
        print(f"note: {note}", file=sys.stderr)


def _progress(total: int, backend: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="paper", desc=f"generate ({backend})", dynamic_ncols=True)


def _write(out: ReviewsFile, record: dict, system_prompt: str, summary: dict, bar, started: float) -> None:
    """One review into the file, the summary and the progress bar (both backends); ``system`` is the system message
    sent (the API backend's record gives it when it adds the rating request)."""
    out.write({"id": record["id"], "system": system_prompt, **record})
    summary["written"] += 1
    summary["truncated"] += bool(record["truncated"])
    summary["prompt_tokens"] += record["prompt_tokens"] or 0
    summary["generated_tokens"] += record["generated_tokens"] or 0
    elapsed = max(time.perf_counter() - started, 1e-9)
    bar.update(1)
    bar.set_postfix(gen_tok_s=f"{summary['generated_tokens'] / elapsed:.1f}",
                    prompt_tok_s=f"{summary['prompt_tokens'] / elapsed:.0f}", truncated=summary["truncated"])


def _run_local(todo, out, summary, settings, system_prompt, model_dir, adapter_dir, checkpoint_dir, quantize, dtype,
               max_context, batch_size) -> None:
    from .local import LocalGenerator, load_generation_model

    model, tokenizer = load_generation_model(model_dir, adapter_dir, checkpoint_dir, quantize, dtype)
    generator = LocalGenerator(model, tokenizer, settings, system_prompt, max_context, batch_size)
    started = time.perf_counter()
    with _progress(len(todo), "local") as bar:
        for batch in generator.batches(generator.prepare(todo)):
            for record in generator.generate(batch):
                _write(out, record, system_prompt, summary, bar, started)


def _run_api(todo, out, summary, run_settings, settings, system_prompt, base_url, concurrency, cache_file, encoding,
             max_retries, timeout_s) -> None:
    from ..answer_cache import AnswerCache
    from .api import ApiGenerator, ApiUnreachableError

    scale = run_settings["rating_scale"]
    cache = AnswerCache(cache_file)
    try:
        generator = ApiGenerator(run_settings["model"], cache, settings, system_prompt, base_url=base_url,
                                 concurrency=concurrency, max_context=run_settings["max_context"],
                                 encoding=encoding, max_retries=max_retries, timeout=timeout_s,
                                 rating_scale=tuple(scale) if scale else None)
    except BaseException:
        cache.close(remove_if_unused=True)
        raise
    started = time.perf_counter()
    finished = False
    with _progress(len(todo), "api") as bar:
        try:
            asyncio.run(generator.run(todo, lambda record: _write(out, record, system_prompt, summary, bar, started)))
            finished = True
        except ApiUnreachableError as exc:
            if out.done:
                kept = (f"The {len(out.done)} reviews written are kept in {out.path}; run the same command again to "
                        "continue once the API answers")
            else:
                kept = "No review was written; run the same command again once the API answers"
            raise ApiUnreachableError(f"{exc}. {kept}") from None
        finally:
            summary["api_calls"] = generator.calls
            # a failed run's cache that this run created and that holds no answer is removed (with the directories
            # made for it): a failed run leaves no empty artifact; one that holds answers is what a rerun resumes from
            cache.close(remove_if_unused=not finished)
