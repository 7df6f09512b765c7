"""Every reader gives the same validated records; bad input is named (strict) or counted and written (skip)."""

import csv
import json

import pytest

from lightning_review.data.datamodule import split_by_paper
from lightning_review.data.readers import READ_SETTINGS, detect_format, read_records
from lightning_review.data.records import RecordError
from lightning_review.errors import UserError
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


@pytest.mark.parametrize("policy", ["strict", "skip"])
def test_a_rejects_file_that_is_the_data_file_is_refused_before_anything_is_written(tmp_path, policy):
    path = write_jsonl(tmp_path / "g.jsonl", [{"id": "a", "paper": PAPER, "review": REVIEW}, "{bad"])
    (tmp_path / "alias.jsonl").symlink_to(path)
    before = path.read_bytes()
    for rejects in (path, tmp_path / "alias.jsonl", tmp_path / "." / "g.jsonl"):
        with pytest.raises(UserError, match=r"rejects_file=.* is the input file .*g\.jsonl"):
            read_records(path, policy=policy, rejects_file=rejects)
    assert path.read_bytes() == before


def test_a_strict_stop_leaves_the_previous_rejects_file_whole(tmp_path):
    rejects = tmp_path / "rejects.jsonl"
    rejects.write_text('{"where": "from the last run"}\n')
    path = write_jsonl(tmp_path / "d.jsonl", [{"paper": PAPER, "review": REVIEW}, {"paper": PAPER, "review": REVIEW},
                                              {"paper": PAPER}])
    with pytest.raises(RecordError, match=r"d\.jsonl:3: missing field 'review'"):
        read_records(path, rejects_file=rejects)
    assert rejects.read_text() == '{"where": "from the last run"}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.jsonl", "rejects.jsonl"]  # no temporary left


def write_bytes_lines(path, lines):
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def test_a_line_that_is_not_utf8_is_named_and_skip_reads_the_rest(tmp_path):
    good = json.dumps({"id": "a", "paper": PAPER, "review": REVIEW}).encode()
    bad = json.dumps({"id": "b", "paper": PAPER, "review": REVIEW}).encode().replace(b"clear", b"cl\xffar")
    later = json.dumps({"id": "c", "paper": PAPER + " Again.", "review": REVIEW}).encode()
    path = write_bytes_lines(tmp_path / "bytes.jsonl", [good, bad, later])
    with pytest.raises(RecordError, match=r"bytes\.jsonl:2: not UTF-8 \(byte 0xff"):
        read_records(path)
    report = read_records(path, policy="skip", rejects_file=tmp_path / "rejects.jsonl")
    assert [r.id for r in report.records] == ["a", "c"] and report.rejected == {"not_utf8": 1}
    assert json.loads((tmp_path / "rejects.jsonl").read_text())["where"] == f"{path}:2"


def test_csv_and_json_rows_that_are_not_utf8_are_named_rows(tmp_path):
    row = f'"{PAPER}","{REVIEW}"'.encode()
    path = write_bytes_lines(tmp_path / "d.csv", [b"paper,review", row, b'"multi\nline ' + PAPER.encode() +
                                                  b'","bad \xfe ' + REVIEW.encode() + b'"', row.replace(b"We", b"I")])
    with pytest.raises(RecordError, match=r"d\.csv:3: column 'review' is not UTF-8 \(byte 0xfe\)"):
        read_records(path)
    report = read_records(path, policy="skip")
    assert len(report.records) == 2 and report.rejected == {"not_utf8": 1}
    array = tmp_path / "d.json"
    array.write_bytes(b'[{"paper": "' + PAPER.encode() + b'", "review": "\xff ' + REVIEW.encode() + b'"}]')
    with pytest.raises(RecordError, match=r"d\.json\[0\]: column 'review' is not UTF-8"):
        read_records(array)
    (tmp_path / "broken.json").write_text('[{"paper": "x",\n "review": }]')
    with pytest.raises(RecordError, match=r"broken\.json:2: not valid JSON"):
        read_records(tmp_path / "broken.json", policy="skip")  # not one JSON document: nothing to skip to


def test_csv_rows_with_more_or_fewer_values_than_columns_are_named_not_read_shifted(tmp_path):
    """An unquoted comma gave extra values that were dropped (the review read from the wrong column); a short row or
    an unclosed quote gave a 'must be a string, got NoneType' that named no cause."""
    good = f'"{PAPER}","{REVIEW}"'
    path = tmp_path / "d.csv"
    other = good.replace("We", "I")
    path.write_text("\n".join(["paper,review", good, f"{PAPER},{REVIEW}, and more", "only a paper", other]) + "\n")
    with pytest.raises(RecordError, match=r"d\.csv:3: 3 values where the header has 2 columns; a value holding a "
                                          r"comma, a quote or a line break must be quoted"):
        read_records(path)
    report = read_records(path, policy="skip")
    assert len(report.records) == 2 and report.rejected == {"column_count": 2}


def test_a_json_escape_of_half_a_surrogate_pair_is_named_not_called_a_byte(tmp_path):
    array = tmp_path / "d.json"
    array.write_text('[{"paper": "' + PAPER + '", "review": "cut \\ud83d emoji ' + REVIEW + '"}]')
    with pytest.raises(RecordError, match=r"d\.json\[0\]: column 'review' holds an unpaired surrogate '\\ud83d'"):
        read_records(array)


def ten_papers_with_whitespace_variants():
    """29 records of 10 paper ids; some copies of a paper differ from the others only by trailing newlines."""
    rows = []
    for p in range(10):
        for r in range(3 if p < 9 else 2):
            rows.append({"id": f"p{p}", "paper": f"Paper {p}. {PAPER}" + "\n" * r,
                         "review": f"Review {r} of paper {p}. {REVIEW}"})
    return rows


def test_papers_are_counted_by_id_up_to_whitespace(tmp_path):
    report = read_records(write_jsonl(tmp_path / "d.jsonl", ten_papers_with_whitespace_variants()))
    assert report.summary()["records"] == 29 and report.summary()["papers"] == 10


def test_one_id_for_two_different_papers_is_refused_or_all_its_records_rejected(tmp_path):
    rows = ten_papers_with_whitespace_variants()
    rows.append({"id": "p3", "paper": "A different paper under a reused id.", "review": REVIEW})
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    with pytest.raises(RecordError, match=r"d\.jsonl: paper id 'p3' has 2 different paper texts \(text 1 at "
                                          r".*d\.jsonl:10, .*; text 2 at .*d\.jsonl:30\).*; data\.on_bad_record=skip "
                                          r"leaves out every record of such ids$"):
        read_records(path, settings=READ_SETTINGS)  # fit's
    with pytest.raises(RecordError) as caught:  # a command without the setting (openai export) is not told of it
        read_records(path)
    assert "on_bad_record" not in str(caught.value)
    rejects = tmp_path / "rejects.jsonl"
    report = read_records(path, policy="skip", rejects_file=rejects)
    assert report.rejected == {"id_with_different_papers": 4}
    assert "p3" not in {r.paper_id for r in report.records} and report.summary()["papers"] == 9
    assert [json.loads(x)["where"] for x in rejects.read_text().splitlines()] == [
        f"{path}:{n}" for n in (10, 11, 12, 30)]


def swapped_csv(tmp_path, reviews_per_paper):
    path = tmp_path / "swapped.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["key", "body", "critique"])
        writer.writeheader()
        for p in range(3):
            for r in range(reviews_per_paper):
                writer.writerow({"key": f"k{p}", "body": f"Paper {p}. {PAPER} " * 10,
                                 "critique": f"Review {r}. {REVIEW}"})
    return path


def test_a_mapping_that_swaps_paper_and_review_is_called_out(tmp_path):
    swap = {"id": "key", "paper": "critique", "review": "body"}
    report = read_records(swapped_csv(tmp_path, 1), mapping=swap)
    assert len(report.warnings) == 1 and "are the paper and review columns swapped" in report.warnings[0]
    assert "swapped.csv" in report.warnings[0] and report.summary()["warnings"] == report.warnings
    assert read_records(swapped_csv(tmp_path, 1), mapping={"id": "key", "paper": "body",
                                                           "review": "critique"}).warnings == []
    # several reviews a paper: each id then carries several "paper" texts, and the error says why
    with pytest.raises(RecordError, match=r"paper id 'k0' has 2 different paper texts.*columns swapped"):
        read_records(swapped_csv(tmp_path, 2), mapping=swap)


def test_kept_behaviours_unknown_mapping_keys_format_and_extra_fields(tmp_path):
    path = swapped_csv(tmp_path, 1)
    with pytest.raises(UserError, match=r"column_mapping keys must be among .* got \['body'\]"):
        read_records(path, mapping={"body": "paper"})
    with pytest.raises(UserError, match=r"unknown data format 'xml'"):
        read_records(path, format="xml")
    extra = write_jsonl(tmp_path / "extra.jsonl", [{"id": "a", "paper": PAPER, "review": REVIEW, "venue": "X"}])
    assert read_records(extra).records[0].paper_id == "a"  # fields we do not use are ignored
    with pytest.raises(FileNotFoundError, match="absent.jsonl"):
        read_records(tmp_path / "absent.jsonl")


@pytest.mark.parametrize("rating, shown", [(True, "True"), (float("nan"), "nan"), ("Infinity", "inf"),
                                           ("excellent", "'excellent'")])
def test_a_rating_that_is_no_finite_number_is_named_not_kept_or_dropped(tmp_path, rating, shown):
    path = tmp_path / "papers.jsonl"
    path.write_text(json.dumps({"id": "p1", "paper": PAPER, "reviews": [{"text": REVIEW, "rating": rating}]}) + "\n")
    with pytest.raises(RecordError, match=rf"papers.jsonl:1 review 0: field 'reviews\[0\]\.rating' must be a finite "
                                          rf"number or null, got {shown}"):
        read_records(path)
    flat = write_jsonl(tmp_path / "flat.jsonl", [{"paper": PAPER, "review": REVIEW, "rating": rating}])
    assert read_records(flat, policy="skip").rejected == {"bad_rating": 1}


def test_documents_without_reviews_in_every_format(tmp_path):
    """need_review=False (the text task): the document alone, from each format's own form."""
    csv_path = tmp_path / "docs.csv"
    with csv_path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["key", "text"])
        writer.writeheader()
        writer.writerow({"key": "c1", "text": PAPER})
    array = tmp_path / "docs.json"
    array.write_text(json.dumps([{"body": PAPER}]))
    chat = write_jsonl(tmp_path / "chat.jsonl", [{"messages": [{"role": "user", "content": PAPER}]}])
    papers = write_jsonl(tmp_path / "papers.jsonl", [{"id": "p1", "paper": PAPER, "reviews": []}])
    for path, mapping in ((csv_path, {"id": "key"}), (array, {"paper": "body"}), (chat, None), (papers, None)):
        [record] = read_records(path, mapping=mapping, need_review=False).records
        assert (record.paper, record.review, record.rating) == (PAPER, "", None), path
        with pytest.raises(RecordError):
            read_records(path, mapping=mapping)  # the review task still needs its reviews
    with pytest.raises(RecordError, match=r"docs\.csv:2: no column 'body' for 'paper'"):
        read_records(csv_path, mapping={"paper": "body"}, need_review=False)


def test_a_chat_line_keeps_its_own_system_message(tmp_path):
    chat = write_jsonl(tmp_path / "chat.jsonl", [
        {"messages": [{"role": "system", "content": "Review harshly."}, {"role": "user", "content": PAPER},
                      {"role": "assistant", "content": REVIEW}]},
        {"messages": [{"role": "user", "content": PAPER + " Two."}, {"role": "assistant", "content": REVIEW}]},
        {"messages": [{"role": "system", "content": "a"}, {"role": "system", "content": "b"},
                      {"role": "user", "content": PAPER + " Three."}, {"role": "assistant", "content": REVIEW}]}])
    report = read_records(chat, policy="skip")
    assert [r.extra.get("system_prompt") for r in report.records] == ["Review harshly.", None]
    assert report.rejected == {"bad_chat_example": 1}
    with pytest.raises(RecordError, match=r"chat\.jsonl:3: a chat example has at most one system message"):
        read_records(chat)


def test_every_reader_takes_path_mapping_and_need_review(tmp_path):
    """One call for every format: no reader is special-cased by the caller for need_review (nor for the command's
    spelling of its settings, ``says``)."""
    import inspect

    from lightning_review.data.readers import READERS

    for name, reader in READERS.items():
        assert list(inspect.signature(reader).parameters) == ["path", "mapping", "need_review", "says"], name
    papers = write_jsonl(tmp_path / "papers.jsonl", [{"id": "p1", "paper": PAPER, "reviews": [{"text": REVIEW}]}])
    # called as _candidates calls it: a paper_reviews line without need_review is one document, its reviews unread
    [(where, item)] = list(READERS["paper_reviews"](papers, {}, False))
    assert where == f"{papers}:1" and item["paper"] == PAPER and "review" not in item


def test_the_real_peerread_sample_reads_with_no_warning():
    """Its fields not read (abstract; a review's reviewer and confidence) are the paper_reviews format's own."""
    if not SHARED_DATA.exists():
        pytest.skip("the PeerRead sample in ../shared/data is absent")
    for need_review in (True, False):
        assert read_records(SHARED_DATA, need_review=need_review).warnings == []
