"""``evaluate`` refuses, in one line and before anything is written or any judge is called: the offline judge without
the ``[eval]`` extra, a chat judge without OPENAI_API_KEY, no system at all, a system file without reviews, and an
empty human file."""

import json
import sys

import pytest

from tests.conftest import run_cli
from tests.openai_server import API_KEY, FakeOpenAI


def test_the_embedding_judge_without_the_eval_extra_is_one_line(inputs, tmp_path, monkeypatch, capsys):
    """In-process: the import of sentence_transformers fails as it does where the extra is not installed."""
    from lightning_review.cli import main

    human, ours = inputs
    out = tmp_path / "runs" / "evaluation"
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    monkeypatch.chdir(tmp_path)
    for judges, which in (([], "the embedding judge (the default --judges)"),
                          (['--judges=["embedding"]'], "the embedding judge")):
        with pytest.raises(SystemExit) as exc:
            main(["evaluate", f"--human_file={human}", f"--systems={json.dumps({'ours': str(ours)})}",
                  f"--output_dir={out}", *judges])
        assert exc.value.code == (f"error: {which} needs the module 'sentence_transformers', which is not "
                                  "installed: pip install -e \".[eval]\" from the project's directory, or use a chat "
                                  "judge instead: --judges '[\"openai:<model>\"]' (with OPENAI_API_KEY set)")
        assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("key", [None, "", "  "], ids=["unset", "empty", "blank"])
def test_a_chat_judge_without_a_key_is_refused_before_the_cache_is_made(inputs, tmp_path, monkeypatch, key):
    human, ours = inputs
    out = tmp_path / "runs" / "evaluation"
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    env = {"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}  # no call may be reached
    if key is not None:
        env["OPENAI_API_KEY"] = key
    proc = run_cli("evaluate", f"--human_file={human}", f"--systems={json.dumps({'ours': str(ours)})}",
                   f"--output_dir={out}", '--judges=["openai:gpt-4"]', cwd=tmp_path, env=env)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.strip() == (
        "error: --judges openai:gpt-4 needs OPENAI_API_KEY in the environment (the key of http://127.0.0.1:9/v1; a "
        "server that takes no key accepts any value); export it and run again, or use the offline judge: "
        "--judges '[\"embedding\"]'")
    assert not (tmp_path / "runs").exists()  # no judge_cache.sqlite, no directory


def test_the_key_message_shows_no_credentials_of_an_address(inputs, tmp_path, monkeypatch):
    human, ours = inputs
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    proc = run_cli("evaluate", f"--human_file={human}", f"--systems={json.dumps({'ours': str(ours)})}",
                   f"--output_dir={tmp_path / 'out'}",
                   '--judges=["embedding", "openai:m@http://u:hunter2@127.0.0.1:9/v1?k=s3cr3t"]', cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.strip().startswith("error: --judges openai:m@http://127.0.0.1:9/v1 needs OPENAI_API_KEY"), \
        proc.stderr
    assert "hunter2" not in proc.stderr + proc.stdout and "s3cr3t" not in proc.stderr + proc.stdout
    assert not (tmp_path / "out").exists()


def test_no_system_or_a_system_without_reviews_is_refused_before_any_judge_call(inputs, tmp_path):
    human, ours = inputs
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    out = tmp_path / "runs" / "evaluation"
    runs = [
        ({}, "error: --systems names no system: nothing would be judged but the controls; give each system's "
             "reviews by name, e.g. --systems '{\"ours\": \"ours.jsonl\"}' (generate's output)"),
        ({"ours": str(ours), "empty one": str(empty)},
         f"error: {empty}: the system 'empty one' has no reviews (the file holds no line but blank ones); give "
         "--systems a file of generate's output, one line {\"id\": paper id, \"review\": text} a paper"),
    ]
    with FakeOpenAI() as server:
        env = {"OPENAI_API_KEY": API_KEY, "OPENAI_BASE_URL": server.base_url}
        for systems, error in runs:
            proc = run_cli("evaluate", f"--human_file={human}", f"--systems={json.dumps(systems)}",
                           f"--output_dir={out}", '--judges=["openai:m"]', cwd=tmp_path, env=env)
            assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
            assert proc.stderr.strip() == error
            assert not (tmp_path / "runs").exists()
        assert server.requests == []


def test_an_empty_human_file_says_so(inputs, tmp_path):
    _, ours = inputs
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    proc = run_cli("evaluate", f"--human_file={empty}", f"--systems={json.dumps({'ours': str(ours)})}",
                   f"--output_dir={tmp_path / 'out'}", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.strip() == (f"error: {empty}: the human file has no reviews (it holds no records); give "
                                   "--human_file the papers' human reviews")
    assert not (tmp_path / "out").exists()


def test_a_judge_address_without_its_scheme_is_refused_at_once(monkeypatch):
    """Without http(s):// the openai client would retry it with backoff, then fail saying nothing of why."""
    from lightning_review.errors import UserError
    from lightning_review.evaluate.command import refuse_unusable_judges

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with pytest.raises(UserError, match=r"^the address of --judges openai:m must start with http:// or https:// "
                                        r"\(got 127\.0\.0\.1:9/v1\)$"):
        refuse_unusable_judges(["openai:m@user:sk-secret@127.0.0.1:9/v1"], given=True)
    monkeypatch.setenv("OPENAI_BASE_URL", "localhost:8000/v1")
    with pytest.raises(UserError, match=r"^OPENAI_BASE_URL must start with http:// or https://"):
        refuse_unusable_judges(["openai:m"], given=True)
    refuse_unusable_judges(["openai:m@http://127.0.0.1:9/v1"], given=True)  # a judge's own address wins
