"""An API reviews file records the server and model that wrote it (never a key), and a resume with another server or
model is refused, naming the file, what made it, what was asked and the fix: one file never mixes two servers'
or two models' reviews. The same server however its address is written resumes."""

import json

import pytest

from tests.generation.api_runs import four_papers, generate, last_line
from tests.openai_server import API_KEY, FakeOpenAI

MODEL = "gpt-4-1106-preview"


@pytest.fixture()
def servers():
    with FakeOpenAI() as first, FakeOpenAI() as second:
        yield first, second


@pytest.fixture()
def papers(tmp_path):
    return four_papers(tmp_path)


def test_a_resume_at_another_server_or_with_another_model_is_refused(servers, papers, tmp_path):
    first, second = servers
    out = tmp_path / "gpt4.jsonl"
    proc = generate(papers, out, f"--api_model={MODEL}", f"--base_url={first.base_url}", "--limit=2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    written = out.read_bytes()

    # the other server: refused before any call
    refused = (
        f"error: {out}:1: this reviews file was made with the API model '{MODEL}' at {first.base_url}, but this "
        f"run asks for the API model '{MODEL}' at {second.base_url}: resuming would mix reviews of two servers in "
        f"one file. Resume it with the same model and endpoint (--api_model {MODEL} --base_url {first.base_url}), "
        "or use another --output_file, or pass --overwrite true to start over")
    proc = generate(papers, out, f"--api_model={MODEL}", f"--base_url={second.base_url}")
    assert last_line(proc) == refused
    # its address written with a key in it: the message shows the address without the key
    secret_url = f"http://user:{API_KEY}@{second.base_url.removeprefix('http://')}?api-key={API_KEY}"
    proc = generate(papers, out, f"--api_model={MODEL}", f"--base_url={secret_url}")
    assert last_line(proc) == refused and API_KEY not in proc.stdout + proc.stderr
    # the default server (OPENAI_BASE_URL) is the other one too
    proc = generate(papers, out, f"--api_model={MODEL}", env={"OPENAI_BASE_URL": second.base_url})
    assert f"but this run asks for the API model '{MODEL}' at {second.base_url}: " in last_line(proc)
    # another model at the same server
    proc = generate(papers, out, "--api_model=gpt-4-0125-preview", f"--base_url={first.base_url}")
    assert last_line(proc) == (
        f"error: {out}:1: this reviews file was made with the API model '{MODEL}' at {first.base_url}, but this "
        f"run asks for the API model 'gpt-4-0125-preview' at {first.base_url}: resuming would mix reviews of two "
        f"models in one file. Resume it with the same model and endpoint (--api_model {MODEL} --base_url "
        f"{first.base_url}), or use another --output_file, or pass --overwrite true to start over")
    assert out.read_bytes() == written and second.chat_calls == 0 and first.chat_calls == 2
    rows = [json.loads(line) for line in written.decode().splitlines()]
    assert [(r["settings"]["model"], r["settings"]["endpoint"]) for r in rows] == [(MODEL, first.base_url)] * 2

    # the same server, its address written otherwise (a trailing slash; OPENAI_BASE_URL): resumed
    proc = generate(papers, out, f"--api_model={MODEL}", f"--base_url={first.base_url}/", "--limit=3")
    assert proc.returncode == 0 and "already_written=2 " in proc.stdout and "written=1 " in proc.stdout, proc.stderr
    proc = generate(papers, out, f"--api_model={MODEL}", env={"OPENAI_BASE_URL": first.base_url})
    assert proc.returncode == 0 and "already_written=3 " in proc.stdout and "written=1 " in proc.stdout, proc.stderr
    assert first.chat_calls == 4
    # the fix the message names: start over at the other server
    proc = generate(papers, out, f"--api_model={MODEL}", f"--base_url={second.base_url}", "--overwrite=true")
    assert proc.returncode == 0 and "written=4 " in proc.stdout, proc.stderr[-3000:]
    assert {json.loads(line)["settings"]["endpoint"] for line in out.read_text().splitlines()} == {second.base_url}
    for path in tmp_path.iterdir():  # the reviews, the answer cache: no key, however the address carried it
        assert API_KEY.encode() not in path.read_bytes(), path


def test_a_file_from_before_endpoints_were_recorded_is_not_resumed_blindly(servers, papers, tmp_path):
    first, _ = servers
    out = tmp_path / "gpt4.jsonl"
    proc = generate(papers, out, f"--api_model={MODEL}", f"--base_url={first.base_url}", "--limit=1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    row = json.loads(out.read_text())
    row["settings"].pop("endpoint", None)  # what generate wrote before it recorded the server
    out.write_text(json.dumps(row) + "\n")
    proc = generate(papers, out, f"--api_model={MODEL}", f"--base_url={first.base_url}")
    assert last_line(proc) == (
        f"error: {out}:1: this reviews file was made with the API model '{MODEL}' at an endpoint it does not record "
        f"(written before generate recorded it), and this run asks for the API model '{MODEL}' at {first.base_url}: "
        "whether they are one server cannot be checked, and two would mix their reviews in one file. Use another "
        "--output_file, or pass --overwrite true to start over (what the same server answered before is in the answer "
        "cache and costs no call)")
    proc = generate(papers, out, f"--api_model={MODEL}", f"--base_url={first.base_url}", "--overwrite=true")
    assert proc.returncode == 0 and "written=4 " in proc.stdout and first.chat_calls == 4, proc.stderr[-3000:]
