"""``python -m lightning_review openai <export|validate|upload|create|follow|cancel|list>`` and
``python -m lightning_review cost``: the GPT-3.5 fine-tuning path, step by step, each step explicit."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

from ..data.rating_line import resolve_rating_line
from ..data.readers import read_records
from ..errors import UserError
from ..openai_client import default_endpoint, public_url
from . import jobs
from .chat_format import (DEFAULT_MAX_TOKENS, OPENAI_TRUNCATES, export_chat_jsonl, fit_fix, is_chat_file,
                          located_examples, over_limit_detail, select, validate_chat_jsonl)
from .cost import CostEstimate, price_for, whole_number_problem
from .screening import KINDS, describe, listed, screen_file
from .tokens import count_message_tokens, encoding_name, get_encoding


def export(data_file: str, output_file: str, first: int | None = None, sample: int | None = None,
           fraction: float | None = None, seed: int = 0, model: str = "gpt-3.5-turbo",
           max_tokens: int = DEFAULT_MAX_TOKENS, truncate: bool = True,
           system_prompt: str | None = None, rating_line: bool | None = None) -> dict:
    """Paper->review JSONL -> OpenAI chat fine-tuning JSONL, with the system prompt and targets of local training.

    Args:
        data_file: paper->review records in any format local training reads (JSONL pairs, a paper with its reviews a
            line as ``collect`` writes and ../shared/data holds, PeerRead, JSON, CSV; lightning_review.data.readers).
        output_file: the chat JSONL to write.
        first: keep the first N records.
        sample: keep a seeded random N records.
        fraction: keep a seeded random fraction of the records.
        seed: seed of sample and fraction.
        model: the model to fine-tune (decides the tokenizer).
        max_tokens: tokens per example allowed by the model.
        truncate: cut papers so each example fits in max_tokens (reviews are never cut).
        system_prompt: the system message of every example, replacing any other. Not given: chat-format input
            (``{"messages": [...]}`` lines) keeps each line's own system message, and records without one (other
            formats, chat lines without a system message) get local training's default system prompt.
        rating_line: end each review with its rating line, as local training's data.rating_line (None: when every
            record of the file has a rating).
    """
    report = read_records(data_file)
    for note in report.warnings + ([f"{data_file}: records not exported: {dict(report.rejected)}"]
                                   if report.rejected else []):  # exact duplicates, under strict
        print(f"warning: {note}", file=sys.stderr)  # as generate's and evaluate's: stdout keeps the summary line
    everything = report.records
    with_rating = resolve_rating_line(rating_line, everything, data_file, "--")  # named as export's flag
    records = select(everything, first=first, sample=sample, fraction=fraction, seed=seed)
    encoding = get_encoding(encoding_name(model)) if truncate else None
    counts = export_chat_jsonl(records, output_file, encoding, max_tokens if truncate else None, system_prompt,
                               with_rating)
    counts["rating_line"] = with_rating
    counts["read"] = report.summary()
    print(f"{output_file}: {counts['examples']} examples; papers truncated to fit {max_tokens} tokens: "
          f"{counts['papers_truncated']} ({counts['paper_tokens_removed']:,} tokens removed)")
    return counts


def validate(file: str, model: str = "gpt-3.5-turbo", max_tokens: int = DEFAULT_MAX_TOKENS,
             report_file: str | None = None, allow_over_limit: bool = False) -> dict:
    """OpenAI's fine-tuning format checks and token counts; exits non-zero when an example would be refused, or
    truncated by OpenAI (unless --allow_over_limit=true).

    Args:
        file: a chat fine-tuning JSONL.
        model: the model to fine-tune (decides the tokenizer).
        max_tokens: tokens per example allowed by the model. A longer example fails validation: OpenAI truncates
            it from its end, cutting the review it is trained on (`openai export` cuts the paper instead).
        report_file: also write the report as JSON here.
        allow_over_limit: accept examples over max_tokens, as OpenAI truncates them (a warning, not an error).
    """
    _check_max_tokens(max_tokens)
    report = validate_chat_jsonl(file, get_encoding(encoding_name(model)), max_tokens)
    summary = report.summary()
    print(json.dumps(summary, indent=1))
    if report_file:
        Path(report_file).write_text(json.dumps({**summary, "errors": report.errors}, indent=1))
    if not report.ok:
        listed = "\n  ".join(report.errors[:20])
        raise SystemExit(f"{file}: {len(report.errors)} format problem(s):\n  {listed}")
    if report.examples == 0:  # as cost and upload refuse it: an upload would be refused, or a job fail
        raise UserError(f"{file}: no examples; a fine-tuning file needs examples (make it with `openai export`)")
    _over_limit(file, report, allow_over_limit, "")
    return summary


def _over_limit(file: str, report, allowed: bool, refusing: str) -> None:
    """validate's and upload's check of the examples over the limit (OpenAI would truncate them): refused, naming
    them and the fix, unless --allow_over_limit accepts them (then a warning)."""
    if not report.over_limit:
        return
    detail = over_limit_detail(report.over_limit, report.examples, report.max_tokens)
    if allowed:
        warnings.warn(f"{file}: {detail}, accepted by --allow_over_limit: {OPENAI_TRUNCATES}", stacklevel=2)
        return
    raise UserError(f"{file}: {refusing}{detail}; {OPENAI_TRUNCATES}: {fit_fix(report.max_tokens)}; or pass "
                    "--allow_over_limit=true to accept the truncation")


def cost(file: str | None = None, tokens: int | None = None, epochs: int = 2, model: str = "gpt-3.5-turbo",
         price_per_1k: float | None = None, prices: str | None = None, exchange_rate: float | None = None,
         currency: str = "CNY", max_tokens: int = DEFAULT_MAX_TOKENS,
         system_prompt: str | None = None, rating_line: bool | None = None) -> CostEstimate:
    """What fine-tuning costs: billed tokens x epochs x price per 1K tokens (and in a local currency).

    Args:
        file: chat JSONL or paper->review JSONL whose tokens to count (each example billed at most max_tokens; a
            warning names the examples over it, which OpenAI would truncate or export would cut).
        tokens: a token count per epoch instead of a file.
        epochs: training epochs.
        model: the model to fine-tune: its tokenizer and its price in the table.
        price_per_1k: USD per 1K training tokens, overriding the table.
        prices: a JSON file {model prefix: USD per 1K} extending the table.
        exchange_rate: units of the local currency per USD.
        currency: the local currency's name.
        max_tokens: tokens per example allowed by the model.
        system_prompt: for paper->review files, the system message the examples will carry (not given: local
            training's); a chat file is costed as it is.
        rating_line: for paper->review files, whether each review ends with its rating line, as export's
            --rating_line (None: when every record has a rating); a file where only some records have one needs it.
    """
    if (file is None) == (tokens is None):
        raise UserError("cost needs either --file (a data file to count) or --tokens (a token count)")
    if file is not None:
        _check_max_tokens(max_tokens)
        encoding = get_encoding(encoding_name(model))
        counts = [(where, count_message_tokens(messages, encoding))
                  for where, messages in located_examples(file, system_prompt, rating_line)]
        tokens = sum(min(n, max_tokens) for _, n in counts)
        if not tokens:
            raise UserError(f"{file}: no examples to cost; pass a file with examples, or --tokens")
        over = [(where, n) for where, n in counts if n > max_tokens]
        if over:
            warnings.warn(_cost_over_limit(file, over, len(counts), max_tokens))
    price = price_per_1k if price_per_1k is not None else price_for(model, prices)
    estimate = CostEstimate(tokens, epochs, price, exchange_rate, currency)
    print("\n".join(estimate.lines()))
    return estimate


def _cost_over_limit(file: str, over: list[tuple[str, int]], examples: int, max_tokens: int) -> str:
    """cost's warning about examples over the limit, each billed at the limit: a chat file's are truncated by OpenAI
    (validate and upload refuse them), a paper->review file's papers are cut to fit by `openai export`."""
    if is_chat_file(file):
        return (f"{file}: {over_limit_detail(over, examples, max_tokens)}, billed here at the limit; "
                f"{OPENAI_TRUNCATES}, and `openai validate` and `openai upload` refuse them (unless "
                f"--allow_over_limit=true): {fit_fix(max_tokens)}")
    return (f"{file}: {over_limit_detail(over, examples, max_tokens, 'records')}, billed here at the limit: "
            f"`openai export --max_tokens={max_tokens}` cuts their papers to fit, losing the end of each; shorten "
            "those papers to keep them whole")


def upload(file: str, yes: bool = False, allow_secret_kinds: list[str] | str | None = None,
           model: str = "gpt-3.5-turbo", max_tokens: int = DEFAULT_MAX_TOKENS, allow_over_limit: bool = False) -> str:
    """Upload a chat JSONL to the fine-tuning service: validated first, screened for secrets and e-mail addresses
    (a finding stops the upload unless its kind is accepted by name), and only after an explicit confirmation
    (--yes=true, or typing "upload"). --yes confirms the upload, never a secret.

    Args:
        file: the chat JSONL (from `openai export`).
        yes: confirm without asking (for scripts).
        allow_secret_kinds: kinds of findings to upload anyway, e.g. '["email"]' (or email) when addresses are meant
            to be in the data (the kinds: openai_key, anthropic_key, huggingface_token, github_token, aws_access_key,
            slack_token, google_api_key, private_key, bearer_token, email).
        model: the model it is meant for (format and token checks).
        max_tokens: tokens per example allowed by the model; a longer example is refused, as by `openai validate`.
        allow_over_limit: upload examples over max_tokens anyway (OpenAI truncates them from their end).
    """
    jobs.require_api()  # before the file is checked and the confirmation asked: both in vain without a key
    allowed = _secret_kinds(allow_secret_kinds)
    _check_max_tokens(max_tokens)
    report = validate_chat_jsonl(file, get_encoding(encoding_name(model)), max_tokens)
    if not report.ok:
        raise UserError(f"{file}: refusing to upload: {len(report.errors)} format problem(s), first: "
                        f"{report.errors[0]} (run `openai validate` for all)")
    if not report.examples:
        raise UserError(f"{file}: refusing to upload: the file has no examples (make it with `openai export`)")
    _over_limit(file, report, allow_over_limit, "refusing to upload: ")
    findings = screen_file(file)
    refused = [(line, kind) for line, kind in findings if kind not in allowed]
    if refused:
        kinds = [kind for kind in KINDS if kind in allowed | {k for _, k in refused}]
        raise UserError(f"{file}: refusing to upload: what looks like a secret or personal data on "
                        f"{listed(refused)}. Remove it and export again, or, if it is meant to be uploaded, accept "
                        f"it by kind: --allow_secret_kinds '{json.dumps(kinds)}'")
    if findings:
        print(f"warning: uploading what --allow_secret_kinds accepts: {describe(findings, file)}", file=sys.stderr)
    size = Path(file).stat().st_size / 2**20
    target = public_url(default_endpoint())  # never a password or key written into the address
    question = (f"Upload {report.examples} examples ({size:.1f} MiB, {report.billed_tokens_per_epoch():,} tokens) "
                f"of your data to {target}? Type 'upload' to confirm: ")
    if not yes:
        if not sys.stdin.isatty():
            raise UserError("refusing to upload without confirmation: pass --yes=true, or run in a terminal")
        if input(question).strip() != "upload":
            raise UserError("upload cancelled: nothing was sent")
    file_id = jobs.upload(file)
    print(f"uploaded {file} as {file_id}")
    return file_id


def _secret_kinds(names: list[str] | str | None) -> set[str]:
    """The kinds named by --allow_secret_kinds (a list, or one string, comma-separated), each checked: a misspelt
    kind would silently accept nothing."""
    names = names.split(",") if isinstance(names, str) else list(names or [])
    names = [name.strip() for name in names if name.strip()]
    unknown = [name for name in names if name not in KINDS]
    if unknown:
        raise UserError(f"--allow_secret_kinds: unknown kind(s) {', '.join(map(repr, unknown))}; "
                        f"the kinds are: {', '.join(KINDS)}")
    return set(names)


def _check_max_tokens(max_tokens: int) -> None:
    problem = whole_number_problem("--max_tokens", max_tokens, "tokens per example")
    if problem:
        raise UserError(problem)


def create(training_file: str, model: str = "gpt-3.5-turbo", epochs: int | None = 2, suffix: str | None = None,
           validation_file: str | None = None, seed: int | None = None, follow: bool = False,
           poll_seconds: float = 10.0):
    """Create a fine-tuning job from an uploaded file id.

    Args:
        training_file: the file id printed by `openai upload`.
        model: the model to fine-tune.
        epochs: training epochs (None: the service decides).
        suffix: added to the fine-tuned model's name.
        validation_file: an uploaded validation file id.
        seed: the job's seed.
        follow: wait for the job and show its events.
        poll_seconds: seconds between polls when following.
    """
    jobs.require_api()
    problem = None if epochs is None else whole_number_problem("--epochs", epochs, "epochs")
    if problem:
        raise UserError(f"{problem}; or --epochs null to let the service decide")
    job = jobs.create(training_file, model, epochs, suffix, validation_file, seed)
    print(f"created {job.id} ({job.status}): {model} on {training_file}")
    return jobs.follow(job.id, poll_seconds) if follow else job


def follow(job_id: str, poll_seconds: float = 10.0):
    """Follow a job to its end with its events; prints the fine-tuned model's name.

    Args:
        job_id: the job id.
        poll_seconds: seconds between polls.
    """
    jobs.require_api()
    return jobs.follow(job_id, poll_seconds)


def cancel(job_id: str):
    """Cancel a job.

    Args:
        job_id: the job id.
    """
    jobs.require_api()
    job = jobs.cancel(job_id)
    print(f"{job.id}: {job.status}")
    return job


def list_jobs(limit: int = 20) -> list:
    """The most recent fine-tuning jobs.

    Args:
        limit: how many.
    """
    jobs.require_api()
    found = jobs.list_jobs(limit)
    for job in found:
        print(f"{job.id}  {job.status:<16} {job.model:<24} {job.fine_tuned_model or ''}")
    return found


COMMANDS = {"export": export, "validate": validate, "upload": upload, "create": create, "follow": follow,
            "cancel": cancel, "list": list_jobs}
