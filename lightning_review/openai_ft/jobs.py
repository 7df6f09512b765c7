"""Fine-tuning jobs through the official ``openai`` client: upload, create, follow, cancel, list.

The client reads OPENAI_API_KEY and OPENAI_BASE_URL from the environment and retries 429, 5xx and timeouts with
exponential backoff itself (``max_retries``); nothing here prints or stores the key.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Callable

TERMINAL = ("succeeded", "failed", "cancelled")


class FineTuneFailed(RuntimeError):
    """The job ended as failed or cancelled."""


# how these commands reach an OpenAI-compatible server instead of OpenAI's, for the missing key's message
ADDRESS = "also export OPENAI_BASE_URL=<its address, e.g. http://localhost:8000/v1>"


def require_api() -> None:
    """Refuse a missing or unusable OPENAI_API_KEY, or an OPENAI_BASE_URL without http(s)://, in the project's one
    line: the openai client would say only "Missing credentials", naming none of our fixes. Every command that calls
    the API runs it first, before a confirmation is asked or a file read in vain; the key is never shown."""
    from ..openai_client import check_api_address, require_api_key

    require_api_key(ADDRESS)
    check_api_address(None)


def client(max_retries: int = 5, timeout: float = 120.0):
    from openai import OpenAI

    require_api()
    return OpenAI(max_retries=max_retries, timeout=timeout)


def upload(path: str | Path, api=None) -> str:
    """Upload a chat JSONL for fine-tuning; returns the file id."""
    api = api or client()
    with Path(path).open("rb") as f:
        return api.files.create(file=f, purpose="fine-tune").id


def create(training_file: str, model: str, epochs: int | None = None, suffix: str | None = None,
           validation_file: str | None = None, seed: int | None = None, api=None):
    api = api or client()
    hyper = {"n_epochs": epochs} if epochs else {}
    kwargs = {"method": {"type": "supervised", "supervised": {"hyperparameters": hyper}}}
    if suffix:
        kwargs["suffix"] = suffix
    if validation_file:
        kwargs["validation_file"] = validation_file
    if seed is not None:
        kwargs["seed"] = seed
    return api.fine_tuning.jobs.create(training_file=training_file, model=model, **kwargs)


STEP = re.compile(r"[Ss]tep (\d+)/(\d+)")


def follow(job_id: str, poll_seconds: float = 10.0, api=None, echo: Callable[[str], None] = print,
           sleep: Callable[[float], None] = time.sleep):
    """Poll the job until it ends, echoing each new event once (oldest first) with training progress; returns the
    finished job. A failed or cancelled job raises FineTuneFailed with the service's reason."""
    from tqdm import tqdm

    api = api or client()
    seen: set[str] = set()
    bar = None
    try:
        while True:
            job = api.fine_tuning.jobs.retrieve(job_id)
            events = list(api.fine_tuning.jobs.list_events(fine_tuning_job_id=job_id, limit=100).data)
            for event in sorted((e for e in events if e.id not in seen), key=lambda e: (e.created_at, e.id)):
                seen.add(event.id)
                echo(f"[{job.status}] {event.message}")
                match = STEP.search(event.message)
                if match:
                    done, total = map(int, match.groups())
                    bar = bar or tqdm(total=total, desc=f"{job_id} steps", unit="step")
                    bar.update(done - bar.n)
            if job.status in TERMINAL:
                break
            sleep(poll_seconds)
    finally:
        if bar is not None:
            bar.close()
    if job.status != "succeeded":
        reason = getattr(job.error, "message", None) if job.error else None
        raise FineTuneFailed(f"fine-tuning job {job_id} {job.status}" + (f": {reason}" if reason else ""))
    echo(f"fine-tuned model: {job.fine_tuned_model}")
    return job


def cancel(job_id: str, api=None):
    return (api or client()).fine_tuning.jobs.cancel(job_id)


def list_jobs(limit: int = 20, api=None) -> list:
    return list((api or client()).fine_tuning.jobs.list(limit=limit).data)
