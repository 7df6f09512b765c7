import pytest

from lightning_review.data.records import RecordError, read_jsonl
from tests.conftest import write_jsonl

GOOD = {"id": "p1", "paper": "A paper.", "review": "A review.", "rating": 6}


def test_reads_records_with_optional_fields(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [GOOD, {"paper": "B", "review": "C"}])
    recs = list(read_jsonl(path))
    assert [r.id for r in recs] == ["p1", "d-2"]
    assert recs[0].rating == 6 and recs[1].rating is None


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"paper": "x"}, r"d\.jsonl:2: missing field 'review'"),
        ('{"paper": "x", "review": ', r"d\.jsonl:2: not valid JSON"),
        ({"paper": "x", "review": "   "}, r"d\.jsonl:2: field 'review' is empty"),
        ({"paper": 3, "review": "r"}, r"d\.jsonl:2: field 'paper' must be a string"),
        ([1, 2], r"d\.jsonl:2: expected a JSON object"),
        # a lone surrogate escape (a cut emoji): a traceback from the hash of the paper's text before
        (r'{"paper": "bad \ud800 text", "review": "r"}',
         r"d\.jsonl:2: field 'paper' holds an unpaired surrogate '\\ud800' at character 5 .*; fix or remove it"),
    ],
)
def test_bad_lines_name_file_line_and_field(tmp_path, bad, message):
    path = write_jsonl(tmp_path / "d.jsonl", [GOOD, bad])
    with pytest.raises(RecordError, match=message):
        list(read_jsonl(path))


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        list(read_jsonl(tmp_path / "nope.jsonl"))


def test_papers_to_review_need_a_paper(tmp_path):
    from lightning_review.data.records import read_papers

    path = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "paper": "text"}, {"paper": "more"}])
    assert list(read_papers(path)) == [("a", "text"), ("p-2", "more")]
    bad = write_jsonl(tmp_path / "q.jsonl", [{"id": "a", "title": "no paper"}])
    with pytest.raises(RecordError, match=r"q\.jsonl:1: missing field 'paper'"):
        list(read_papers(bad))
