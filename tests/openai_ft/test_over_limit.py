"""Examples over the token limit, which OpenAI truncates from their end (cutting the review trained on): cost bills
them at the limit and says so on the console, validate and upload refuse them (one line: the file, the lines, the
fix) unless --allow_over_limit=true accepts the truncation, and the three name them in the same words."""

import json

import pytest

from lightning_review.errors import UserError
from lightning_review.openai_ft import commands
from lightning_review.openai_ft.chat_format import over_limit_detail
from lightning_review.openai_ft.tokens import count_message_tokens, get_encoding
from tests.conftest import run_cli, write_jsonl

LIMIT = 300


def example(words: int) -> dict:
    return {"messages": [{"role": "system", "content": "Review the paper."},
                         {"role": "user", "content": "We propose a method. " * words},
                         {"role": "assistant", "content": "The baselines are weak; add an ablation."}]}


@pytest.fixture
def chat(tmp_path):
    """Lines 2 and 4 of 5 are over LIMIT tokens."""
    return write_jsonl(tmp_path / "chat.jsonl", [example(200 if i in (1, 3) else 10) for i in range(5)])


def tokens_of(path) -> list[int]:
    encoding = get_encoding("cl100k_base")
    return [count_message_tokens(json.loads(line)["messages"], encoding) for line in path.read_text().splitlines()]


def test_cost_warns_on_the_console_about_examples_billed_at_the_limit(chat, tmp_path):
    counts = tokens_of(chat)
    proc = run_cli("cost", f"--file={chat}", f"--max_tokens={LIMIT}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    billed = sum(min(n, LIMIT) for n in counts)
    assert proc.stdout.splitlines()[0] == f"{billed:,} tokens x 2 epochs x $0.008 per 1K tokens"
    assert proc.stderr.splitlines() == [
        f"warning: {chat}: 2 of 5 examples are over the limit of {LIMIT} tokens per example (line 2: {counts[1]:,} "
        f"tokens; line 4: {counts[3]:,} tokens), billed here at the limit; OpenAI truncates such an example from its "
        "end, cutting the review it is trained on, and `openai validate` and `openai upload` refuse them (unless "
        "--allow_over_limit=true): export the file again with papers cut to fit (`openai export "
        f"--max_tokens={LIMIT}`, without --truncate=false), or shorten those papers"]


def test_cost_of_paper_review_records_says_export_will_cut_their_papers(tmp_path):
    pairs = write_jsonl(tmp_path / "pairs.jsonl", [
        {"id": f"p{i}", "paper": "We propose a method. " * (200 if i == 2 else 10),
         "review": "The baselines are weak; add an ablation."} for i in range(3)])
    proc = run_cli("cost", f"--file={pairs}", f"--max_tokens={LIMIT}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    [line] = proc.stderr.splitlines()
    assert line.startswith(f"warning: {pairs}: 1 of 3 records is over the limit of {LIMIT} tokens per example "
                           "(line 3, id p2: ")
    assert line.endswith(f"billed here at the limit: `openai export --max_tokens={LIMIT}` cuts their papers to fit, "
                         "losing the end of each; shorten those papers to keep them whole")


def test_cost_says_nothing_when_every_example_fits(chat, tmp_path):
    proc = run_cli("cost", f"--file={chat}", cwd=tmp_path)  # the default limit, 16,385
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr[-2000:]


def test_validate_fails_on_examples_over_the_limit_naming_lines_and_fix(chat, tmp_path):
    counts = tokens_of(chat)
    proc = run_cli("openai", "validate", f"--file={chat}", f"--max_tokens={LIMIT}", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["over_limit"] == 2  # the report is still printed
    assert proc.stderr.splitlines() == [
        f"error: {chat}: 2 of 5 examples are over the limit of {LIMIT} tokens per example (line 2: {counts[1]:,} "
        f"tokens; line 4: {counts[3]:,} tokens); OpenAI truncates such an example from its end, cutting the review it "
        f"is trained on: export the file again with papers cut to fit (`openai export --max_tokens={LIMIT}`, without "
        "--truncate=false), or shorten those papers; or pass --allow_over_limit=true to accept the truncation"]


def test_allow_over_limit_makes_it_a_warning(chat, tmp_path):
    proc = run_cli("openai", "validate", f"--file={chat}", f"--max_tokens={LIMIT}", "--allow_over_limit=true",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    [line] = proc.stderr.splitlines()
    assert line.startswith(f"warning: {chat}: 2 of 5 examples are over the limit of {LIMIT} tokens per example")
    assert line.endswith("accepted by --allow_over_limit: OpenAI truncates such an example from its end, cutting the "
                         "review it is trained on")


def test_upload_refuses_them_as_validate_does_before_sending_anything(chat, monkeypatch):
    sent = []
    monkeypatch.setattr(commands.jobs, "upload", sent.append)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789")  # upload checks it first; nothing is sent
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(UserError, match=rf"^{chat}: refusing to upload: 2 of 5 examples are over the limit of "
                                        rf"{LIMIT} tokens .* --allow_over_limit=true to accept the truncation$"):
        commands.upload(str(chat), yes=True, max_tokens=LIMIT)
    assert sent == []
    with pytest.warns(UserWarning, match="2 of 5 examples are over the limit .* accepted by --allow_over_limit"):
        commands.upload(str(chat), yes=True, max_tokens=LIMIT, allow_over_limit=True)
    assert sent == [str(chat)]


def test_validate_refuses_a_limit_below_one(chat, tmp_path):
    proc = run_cli("openai", "validate", f"--file={chat}", "--max_tokens=0", cwd=tmp_path)
    assert proc.returncode == 1 and proc.stderr.splitlines() == [
        "error: --max_tokens must be a whole number of tokens per example, 1 or more (got 0)"]


def test_many_over_the_limit_are_counted_after_the_first_three():
    over = [(f"f.jsonl:{i}", 400 + i) for i in range(1, 6)]
    assert over_limit_detail(over, 9, LIMIT) == (
        "5 of 9 examples are over the limit of 300 tokens per example (line 1: 401 tokens; line 2: 402 tokens; "
        "line 3: 403 tokens; and 2 more)")
