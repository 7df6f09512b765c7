"""collect's numeric flags out of range are one line naming the flag, what it takes and an example, before any
request: --timeout_s 0 was a urllib3 traceback, --max_papers 0 listed the whole venue first."""

from __future__ import annotations

import math

import pytest

from lightning_review.collect.command import collect
from lightning_review.errors import UserError

from .openreview_server import VENUE

GOOD = dict(max_papers=None, requests_per_second=0, timeout_s=5, max_attempts=2, retry_wait_s=0.0)


def test_timeout_0_on_the_command_line_is_one_line_naming_the_flag_before_any_request(server, tmp_path):
    from tests.conftest import run_cli

    out = tmp_path / "out.jsonl"
    proc = run_cli("collect", f"--venue={VENUE}", f"--baseurl={server.url}", f"--output_file={out}",
                   "--timeout_s=0", "--progress=false", cwd=tmp_path, timeout=120)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: --timeout_s must be a number of seconds above 0 (how long one API request may take before the "
        "client retries it, e.g. 60), got 0.0")
    assert server.requests == [] and not out.exists()


@pytest.mark.parametrize("flag, value, words", [
    ("timeout_s", 0, "--timeout_s must be a number of seconds above 0"),
    ("timeout_s", -1.5, "--timeout_s must be a number of seconds above 0"),
    ("timeout_s", math.nan, "--timeout_s must be a number of seconds above 0"),
    ("max_papers", 0, "--max_papers must be a whole number of 1 or more (papers in the output file at most, "
                      "e.g. 100; leave it out for all), got 0"),
    ("max_papers", -3, "--max_papers must be a whole number of 1 or more"),
    ("max_attempts", 0, "--max_attempts must be a whole number of 1 or more (tries of each request, e.g. 5), got 0"),
    ("requests_per_second", -1, "--requests_per_second must be a number of 0 or more (the most requests sent a "
                                "second, e.g. 2; 0 for no limit), got -1"),
    ("requests_per_second", math.nan, "--requests_per_second must be a number of 0 or more"),
    ("retry_wait_s", -2, "--retry_wait_s must be a number of seconds of 0 or more"),
])
def test_a_setting_out_of_range_is_refused_before_any_request(server, tmp_path, flag, value, words):
    out = tmp_path / "out.jsonl"
    with pytest.raises(UserError) as exc:
        collect(output_file=str(out), venue=VENUE, baseurl=server.url, progress=False, **{**GOOD, flag: value})
    assert str(exc.value).startswith(words) and "\n" not in str(exc.value)
    assert server.requests == [] and not out.exists()


def test_every_bad_setting_is_named_at_once(server, tmp_path):
    with pytest.raises(UserError) as exc:
        collect(output_file=str(tmp_path / "out.jsonl"), venue=VENUE, baseurl=server.url, progress=False,
                max_papers=0, requests_per_second=-1, timeout_s=0, max_attempts=0, retry_wait_s=-1)
    message = str(exc.value)
    assert [flag for flag in ("--max_papers", "--requests_per_second", "--timeout_s", "--max_attempts",
                              "--retry_wait_s") if flag in message] == [
        "--max_papers", "--requests_per_second", "--timeout_s", "--max_attempts", "--retry_wait_s"]
    assert server.requests == []


def test_a_nan_split_fraction_is_refused_before_any_request(server, tmp_path):
    """NaN passed every comparison of the check, and the split failed after the crawl with int(nan)."""
    with pytest.raises(UserError, match=r"--split: fractions must be non-negative and add up to 1"):
        collect(output_file=str(tmp_path / "out.jsonl"), venue=VENUE, baseurl=server.url, progress=False,
                split={"train": math.nan, "test": 1.0}, **GOOD)
    assert server.requests == []
