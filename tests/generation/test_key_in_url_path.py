"""A key in the PATH of the API's address (``--base_url https://proxy.example/v1/<key>/``, as some proxies want) is
never recorded nor shown: the reviews file's endpoint, the answer cache, stdout and stderr, and the messages of a
refused resume name the placeholder ``<OPENAI_API_KEY>`` instead. The same address still resumes; another is still
refused."""

import json
import os
from unittest import mock

import pytest

from lightning_review import openai_client
from tests.generation.api_runs import four_papers, generate, last_line
from tests.openai_server import API_KEY, FakeOpenAI

MODEL = "gpt-4-1106-preview"
PLACEHOLDER = "<OPENAI_API_KEY>"


class KeyInPathServer(FakeOpenAI):
    """A proxy that takes the key in its path: ``/v1/<key>/chat/completions`` is served as ``/v1/chat/completions``;
    a request without the key in its path is refused (404), so a test knows the key went where it was asked."""

    def handle(self, method, path, headers, body):
        prefix = f"/v1/{API_KEY}/"
        if path.startswith(prefix):
            return super().handle(method, "/v1/" + path[len(prefix):], headers, body)
        self.requests.append((method, path))
        return 404, {"error": {"message": "no route", "type": "invalid_request_error"}}


@pytest.fixture()
def proxy():
    with KeyInPathServer() as server:
        yield server


@pytest.fixture()
def papers(tmp_path):
    return four_papers(tmp_path)


def files_holding_key(root) -> list:
    return [str(p) for p in sorted(root.rglob("*")) if p.is_file() and API_KEY.encode() in p.read_bytes()]


def test_a_key_in_the_path_is_in_no_file_and_no_output_and_the_same_address_resumes(proxy, papers, tmp_path):
    out = tmp_path / "out" / "reviews.jsonl"
    out.parent.mkdir()
    cache = tmp_path / "cache" / "answers.sqlite"
    cache.parent.mkdir()
    url = f"{proxy.base_url}/{API_KEY}/"
    proc = generate(papers, out, f"--api_model={MODEL}", f"--base_url={url}", f"--cache_file={cache}", "--limit=2")
    assert proc.returncode == 0 and "written=2 " in proc.stdout, proc.stderr[-3000:]
    assert proxy.chat_calls == 2  # the key went where it was asked: the proxy serves no other path
    assert API_KEY not in proc.stdout + proc.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["settings"]["endpoint"] for r in rows} == {f"{proxy.base_url}/{PLACEHOLDER}"}

    # the same address (and written otherwise: without its trailing slash, as OPENAI_BASE_URL) resumes
    proc = generate(papers, out, f"--api_model={MODEL}", f"--base_url={url}", f"--cache_file={cache}", "--limit=3")
    assert proc.returncode == 0 and "already_written=2 " in proc.stdout and "written=1 " in proc.stdout, proc.stderr
    proc = generate(papers, out, f"--api_model={MODEL}", f"--cache_file={cache}",
                    env={"OPENAI_BASE_URL": url.rstrip("/")})
    assert proc.returncode == 0 and "already_written=3 " in proc.stdout and "written=1 " in proc.stdout, proc.stderr
    assert API_KEY not in proc.stdout + proc.stderr and proxy.chat_calls == 4
    # every file the runs wrote (the reviews, the answer cache and its journal, any lock or partial file): no key
    assert files_holding_key(out.parent) == [] and files_holding_key(cache.parent) == []


def test_a_refused_resume_names_the_placeholder_not_the_key(proxy, papers, tmp_path):
    out = tmp_path / "reviews.jsonl"
    url = f"{proxy.base_url}/{API_KEY}"
    proc = generate(papers, out, f"--api_model={MODEL}", f"--base_url={url}", "--limit=1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    written = out.read_bytes()
    shown = f"{proxy.base_url}/{PLACEHOLDER}"

    # another path at the same host (the key gone from it): another endpoint, refused, the key never shown
    proc = generate(papers, out, f"--api_model={MODEL}", f"--base_url={proxy.base_url}")
    assert last_line(proc) == (
        f"error: {out}:1: this reviews file was made with the API model '{MODEL}' at {shown}, but this run asks "
        f"for the API model '{MODEL}' at {proxy.base_url}: resuming would mix reviews of two servers in one file. "
        f"Resume it with the same model and endpoint (--api_model {MODEL} --base_url {shown}), or use another "
        "--output_file, or pass --overwrite true to start over")
    assert API_KEY not in proc.stdout + proc.stderr
    # the key after another path segment: still another endpoint, and the asked one is shown with the placeholder
    other = f"{proxy.base_url}/team/{API_KEY}"
    proc = generate(papers, out, f"--api_model={MODEL}", f"--base_url={other}")
    assert f"but this run asks for the API model '{MODEL}' at {proxy.base_url}/team/{PLACEHOLDER}: " in \
        last_line(proc)
    assert API_KEY not in proc.stdout + proc.stderr
    assert out.read_bytes() == written and proxy.chat_calls == 1
    assert files_holding_key(tmp_path) == []


def test_an_unreachable_address_with_the_key_in_its_path_is_shown_with_the_placeholder(papers, tmp_path):
    with FakeOpenAI() as gone:
        base = gone.base_url  # a port nothing listens on once the server is closed
    out = tmp_path / "reviews.jsonl"
    proc = generate(papers, out, f"--api_model={MODEL}", f"--base_url={base}/{API_KEY}/", "--max_retries=0")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert f"{base}/{PLACEHOLDER}" in proc.stderr and API_KEY not in proc.stdout + proc.stderr
    assert files_holding_key(tmp_path) == []


@pytest.mark.parametrize("key", [API_KEY, "sk-with/slash+and=signs-0123"])
def test_every_shown_address_redacts_the_key_in_its_path(key):
    from urllib.parse import quote

    with mock.patch.dict(os.environ, {"OPENAI_API_KEY": key}):
        assert openai_client.public_url(f"https://proxy.example/v1/{key}/") == f"https://proxy.example/v1/{PLACEHOLDER}"
        assert openai_client.public_url(f"https://proxy.example/v1/{quote(key, safe='')}") == \
            f"https://proxy.example/v1/{PLACEHOLDER}"
        assert openai_client.public_url(f"proxy.example/{key}?k={key}") == f"proxy.example/{PLACEHOLDER}"
        with pytest.raises(openai_client.UserError) as refused:
            openai_client.check_base_url(f"ftp://proxy.example/{key}")
        assert key not in str(refused.value) and PLACEHOLDER in str(refused.value)
        # padded with blanks in the environment: the key itself is still found
    with mock.patch.dict(os.environ, {"OPENAI_API_KEY": f"  {key}\n"}):
        assert openai_client.redact_keys(f"at /v1/{key}") == f"at /v1/{PLACEHOLDER}"


@pytest.mark.parametrize("value", [None, "", "   ", "v1", "1234567"])
def test_no_key_or_a_short_one_redacts_nothing(value):
    env = {} if value is None else {"OPENAI_API_KEY": value}
    with mock.patch.dict(os.environ, env):
        if value is None:
            os.environ.pop("OPENAI_API_KEY", None)
        text = "https://localhost:8000/v1/1234567/models"
        assert openai_client.redact_keys(text) == text
        assert openai_client.public_url(text) == text
    assert openai_client.MIN_REDACTED_KEY_LENGTH == 8
