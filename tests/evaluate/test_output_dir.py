"""``evaluate`` checks everything it could refuse before it makes its output directory: a run refused for bad input
(a judge, a file, a price, a setting, the cache) ends in one line and leaves no directory, empty or partial."""

import json
import os

import pytest

from tests.conftest import run_cli, write_jsonl
from tests.openai_server import API_KEY

REVIEW = "The experiments lack strong recent baselines. The proof of Theorem 2 assumes convexity."


@pytest.fixture
def inputs(tmp_path):
    human = write_jsonl(tmp_path / "human.jsonl", [
        {"id": f"p{k}", "paper": f"Paper {k} studies graphs. " * 10,
         "reviews": [{"text": REVIEW, "rating": 6}, {"text": REVIEW, "rating": 5}]} for k in range(3)])
    ours = write_jsonl(tmp_path / "ours.jsonl", [{"id": f"p{k}", "review": REVIEW} for k in range(3)])
    return human, ours


def corrupt_cache(tmp_path):
    cache = tmp_path / "caches" / "judge.sqlite"
    cache.parent.mkdir()
    cache.write_bytes(os.urandom(4096))
    return ['--judges=["openai:m"]', f"--cache_file={cache}"]


# (case, extra flags or a function of tmp_path making them, the start of the error line)
CASES = [
    ("unknown judge", ['--judges=["gpt-4"]'], "error: unknown judge 'gpt-4'"),
    ("a judge without a model", ['--judges=["openai:@http://127.0.0.1:9/v1"]'],
     "error: --judges: 'openai:@http://127.0.0.1:9/v1' names no model; write 'openai:<model>[@<base_url>]'"),
    ("the same judge twice", ['--judges=["openai:m", "openai:m@http://127.0.0.1:9/v1/"]'],
     "error: --judges: 'openai:m' and 'openai:m@http://127.0.0.1:9/v1' are the same judge"),
    ("dollars without prices", ["--max_dollars=5"], "error: --max_dollars 5 cannot apply without the judge's prices"),
    ("one price", ["--dollars_per_1k_prompt=0.01"], "error: --dollars_per_1k_prompt is given but"),
    ("unknown control", ["--controls=[human, typo]"], "error: --controls: unknown ['typo']"),
    ("bad settings", ["--concurrency=0", "--resamples=0"],
     "error: --concurrency must be a whole number of 1 or more (chat judge calls in flight, e.g. 8), got 0; "
     "--resamples must be a whole number of 1 or more"),
    ("negative budget", ["--max_calls=-1"], "error: --max_calls must be a whole number of 1 or more"),
    ("rejects file without skip", ["--rejects_file=rejects.jsonl"],
     "error: --rejects_file=rejects.jsonl lists the records"),
    ("corrupt cache elsewhere", corrupt_cache, "error: {tmp}/caches/judge.sqlite: the answer cache is unreadable"),
]


@pytest.mark.parametrize("case,flags,error", CASES, ids=[c[0] for c in CASES])
def test_a_refused_run_leaves_no_output_directory(inputs, tmp_path, case, flags, error):
    human, ours = inputs
    out = tmp_path / "runs" / "evaluation"
    flags = flags(tmp_path) if callable(flags) else flags
    env = {"OPENAI_API_KEY": API_KEY, "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}  # no call may be reached
    proc = run_cli("evaluate", f"--human_file={human}", f"--systems={json.dumps({'ours': str(ours)})}",
                   f"--output_dir={out}", *flags, cwd=tmp_path, env=env)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1].startswith(error.format(tmp=tmp_path)), proc.stderr
    assert not (tmp_path / "runs").exists()  # not even the parent a successful run would have made


def test_bad_input_files_leave_no_output_directory(inputs, tmp_path):
    """Input read before the directory is made: a missing file, a bad human line, a bad system line, a system named
    like a control, an output path under a file."""
    human, ours = inputs
    out = tmp_path / "runs" / "evaluation"
    bad_human = tmp_path / "bad_human.jsonl"
    bad_human.write_text(human.read_text().splitlines()[0][:40] + "\n")
    bad_system = write_jsonl(tmp_path / "bad_system.jsonl", [{"id": "p0", "review": REVIEW}, {"id": "p0"}])
    (tmp_path / "a_file").write_text("")
    runs = [
        ([f"--human_file={tmp_path / 'missing.jsonl'}", f"--systems={json.dumps({'ours': str(ours)})}"],
         "missing.jsonl"),
        ([f"--human_file={human}", f"--systems={json.dumps({'ours': str(tmp_path / 'gone.jsonl')})}"], "gone.jsonl"),
        ([f"--human_file={bad_human}", f"--systems={json.dumps({'ours': str(ours)})}"],
         f"error: {bad_human}:1: not valid JSON"),
        ([f"--human_file={human}", f"--systems={json.dumps({'ours': str(bad_system)})}"],
         f"error: {bad_system}:2: a system output line needs 'id' (the paper) and 'review'"),
        ([f"--human_file={human}", f"--systems={json.dumps({'Human (control)': str(ours)})}"],
         "error: --systems: the system 'Human (control)' has the name of the control"),
    ]
    for flags, error in runs:
        proc = run_cli("evaluate", *flags, f"--output_dir={out}", cwd=tmp_path)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
        assert error in proc.stderr, proc.stderr
        assert not (tmp_path / "runs").exists(), flags
    proc = run_cli("evaluate", f"--human_file={human}", f"--systems={json.dumps({'ours': str(ours)})}",
                   f"--output_dir={tmp_path / 'a_file' / 'evaluation'}", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.strip() == (f"error: --output_dir={tmp_path / 'a_file' / 'evaluation'} cannot be created: "
                                   f"{tmp_path / 'a_file'} is a file, not a directory; give --output_dir a path "
                                   "under a directory")


def test_an_output_over_an_input_is_refused_before_anything_is_written(inputs, tmp_path):
    human, ours = inputs
    report = tmp_path / "report.md"
    report.write_text(human.read_text())  # a human file that happens to be named report.md, in the output directory
    proc = run_cli("evaluate", f"--human_file={report}", f"--systems={json.dumps({'ours': str(ours)})}",
                   f"--output_dir={tmp_path}", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.strip() == (f"error: --output_dir={report} is the input file {report}: writing it would "
                                   "destroy the input; give --output_dir another path")
    assert report.read_text() == human.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["human.jsonl", "ours.jsonl", "report.md"]


def test_an_output_file_that_is_a_directory_is_refused_before_anything_runs(inputs, tmp_path):
    human, ours = inputs
    out = tmp_path / "out"
    (out / "result.json").mkdir(parents=True)
    proc = run_cli("evaluate", f"--human_file={human}", f"--systems={json.dumps({'ours': str(ours)})}",
                   f"--output_dir={out}", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]  # was after the judging
    assert proc.stderr.strip() == (f"error: {out / 'result.json'} is a directory, but --output_dir={out} has the "
                                   "file result.json written there; move or remove that directory, or give "
                                   "--output_dir another directory")
    assert sorted(p.name for p in out.iterdir()) == ["result.json"]
