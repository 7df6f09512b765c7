"""Every reader gives the same validated records; bad input is named (strict) or counted and written (skip)."""

import csv
import json

import pytest

from lightning_review.data.datamodule import split_by_paper
from lightning_review.data.readers import detect_format, read_records
from lightning_review.data.records import RecordError
from tests.conftest import SHARED_DATA, write_jsonl

PAPER = "We propose a graph method for molecules and test it on three benchmarks."
REVIEW = "The paper is clear; the baselines are weak and the ablation is missing."


def test_canonical_and_chat_jsonl(tmp_path):
    canonical = write_jsonl(tmp_path / "pairs.jsonl", [{"id": "a", "paper": PAPER, "review": REVIEW, "rating": 6}])
    chat = write_jsonl(tmp_path / "chat.jsonl", [{"messages": [
        {"role": "system", "content": "s"}, {"role": "user", "content": PAPER},
        {"role": "assistant", "content": REVIEW}]}])
    assert detect_format(canonical) == "jsonl" and detect_format(chat) == "chat"
    a, b = read_records(canonical).records[0], read_records(chat).records[0]
    assert (a.id, a.paper, a.review, a.rating) == ("a", PAPER, REVIEW, 6)
    assert (b.paper, b.review, b.id) == (PAPER, REVIEW, "chat-1")


def test_paper_with_a_list_of_reviews_gives_one_record_per_review(tmp_path):
    path = write_jsonl(tmp_path / "papers.jsonl", [{"id": "p1", "title": "T", "paper": PAPER, "reviews": [
        {"reviewer": "R1", "text": REVIEW, "rating": "7: accept"}, {"reviewer": "R2", "text": REVIEW + " More.",
                                                                    "rating": 5}, {"reviewer": "R3", "text": ""}]}])
    report = read_records(path, policy="skip")
    assert [r.id for r in report.records] == ["p1#0", "p1#1"] and report.records[0].rating == 7.0
    assert report.rejected == {"empty_review": 1}
    assert report.summary()["papers"] == 1


def test_peerread_directory(tmp_path):
    (tmp_path / "reviews").mkdir()
    (tmp_path / "parsed_pdfs").mkdir()
    (tmp_path / "reviews" / "42.json").write_text(json.dumps({"id": "42", "title": "Deep nets", "reviews": [
        {"comments": REVIEW, "RECOMMENDATION": 6, "IS_META_REVIEW": False},
        {"comments": "Accept. The committee agrees.", "IS_META_REVIEW": True},
        {"comments": "We thank the reviewers for their comments.", "IS_META_REVIEW": False},  # author reply
        {"comments": "", "RECOMMENDATION": 5, "IS_META_REVIEW": False}]}))
    (tmp_path / "parsed_pdfs" / "42.pdf.json").write_text(json.dumps({"name": "42.pdf", "metadata": {
        "title": "Deep nets", "abstractText": "We study depth.",
        "sections": [{"heading": "1 Introduction", "text": "Depth helps."}, {"text": "More text."}]}}))
    report = read_records(tmp_path, policy="skip")
    assert detect_format(tmp_path) == "peerread"
    assert [r.review for r in report.records] == [REVIEW] and report.rejected == {"empty_review": 1}
    assert report.records[0].paper == "Deep nets\n\nWe study depth.\n\n1 Introduction\nDepth helps.\n\nMore text."


def test_csv_and_json_with_a_column_mapping(tmp_path):
    path = tmp_path / "data.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["key", "body", "critique", "score"])
        writer.writeheader()
        writer.writerow({"key": "c1", "body": PAPER, "critique": REVIEW, "score": "8"})
    mapping = {"id": "key", "paper": "body", "review": "critique", "rating": "score"}
    record = read_records(path, mapping=mapping).records[0]
    assert (record.id, record.paper, record.review, record.rating) == ("c1", PAPER, REVIEW, 8.0)
    with pytest.raises(RecordError, match=r"data.csv:2: no column 'review'"):
        read_records(path, mapping={"paper": "body"})
    array = tmp_path / "data.json"
    array.write_text(json.dumps([{"body": PAPER, "critique": REVIEW}]))
    assert read_records(array, mapping={"paper": "body", "review": "critique"}).records[0].review == REVIEW


def test_skip_policy_counts_by_reason_and_writes_rejects(tmp_path):
    path = write_jsonl(tmp_path / "mixed.jsonl", [
        {"paper": PAPER, "review": REVIEW},
        "{not json",
        {"paper": PAPER},
        {"paper": PAPER, "review": "Too short."},
        {"paper": PAPER, "review": REVIEW},  # duplicate of line 1
        {"paper": " ", "review": REVIEW},
    ])
    rejects = tmp_path / "rejects.jsonl"
    report = read_records(path, policy="skip", rejects_file=rejects)
    assert len(report.records) == 1
    assert report.rejected == {"invalid_json": 1, "missing_review": 1, "review_too_short": 1, "duplicate": 1,
                               "empty_paper": 1}
    lines = [json.loads(x) for x in rejects.read_text().splitlines()]
    assert [x["where"] for x in lines] == [f"{path}:{n}" for n in (2, 3, 4, 5, 6)]
    with pytest.raises(RecordError, match=r"mixed.jsonl:2: not valid JSON"):
        read_records(path)  # strict: the first bad record stops, named


def test_real_peerread_sample_reads_and_splits_by_paper():
    if not SHARED_DATA.exists():
        pytest.skip("the PeerRead sample in ../shared/data is absent")
    report = read_records(SHARED_DATA, policy="skip")
    papers = report.summary()["papers"]
    assert len(report.records) > papers > 0  # several reviews per paper
    train, val = split_by_paper(report.records, 0.2, seed=0)
    assert {r.paper_key for r in train}.isdisjoint({r.paper_key for r in val}) and val
