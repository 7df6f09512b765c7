from __future__ import annotations

import json

import pytest

from lightning_review.collect.command import collect
from lightning_review.collect.split import split_file
from lightning_review.data.readers import read_records
from lightning_review.errors import UserError


def test_folder_of_pdfs_with_a_reviews_file(paper_pdfs, tmp_path):
    pdf_dir = tmp_path / "pdfs"
    pdf_dir.mkdir()
    for name in ("paper1", "paper2", "extra"):
        (pdf_dir / f"{name}.pdf").write_bytes(paper_pdfs[name if name != "extra" else "paper3"])
    reviews = tmp_path / "reviews.jsonl"
    reviews.write_text("\n".join(json.dumps(x) for x in [
        {"id": "paper1", "text": "The paper is clear and the method is sound.", "rating": 7, "reviewer": "R1"},
        {"id": "paper1", "review": "The evaluation covers one venue only.", "rating": 4},
        {"id": "paper2", "title": "Sparse", "reviews": [{"text": "An interesting idea, weakly tested."}]},
        {"id": "missing", "text": "There is no PDF for this one."}]) + "\n")
    out = tmp_path / "pairs.jsonl"
    summary = collect(output_file=str(out), pdf_dir=str(pdf_dir), reviews_file=str(reviews), progress=False)
    assert summary["counts"]["written"] == 2 and summary["left_out"] == {"pdfs_without_reviews": ["extra"],
                                                                          "no_pdf": ["missing"]}
    report = read_records(out)
    assert [(r.paper_id, r.rating) for r in report.records] == [("paper1", 7), ("paper1", 4), ("paper2", None)]
    assert report.records[0].title == "Reviewing Papers with Long Contexts"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "paper1", "rating": 3}\n')
    with pytest.raises(UserError, match="bad.jsonl:1: a review needs its text"):
        collect(output_file=str(tmp_path / "x.jsonl"), pdf_dir=str(pdf_dir), reviews_file=str(bad), progress=False)


def test_split_by_paper_seeded(tmp_path):
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({"id": f"p{i}", "paper": "x", "reviews": [{"text": "y"}] * 2}) + "\n"
                            for i in range(10)))
    parts = split_file(data, {"train": 0.8, "validation": 0.1, "test": 0.1}, seed=3)
    assert [parts[k]["papers"] for k in ("train", "validation", "test")] == [8, 1, 1]
    ids = {k: [json.loads(line)["id"] for line in open(parts[k]["file"])] for k in parts}
    assert sorted(sum(ids.values(), [])) == sorted(f"p{i}" for i in range(10))  # every paper once, whole
    shuffled = tmp_path / "shuffled.jsonl"
    shuffled.write_text("".join(reversed(data.read_text().splitlines(keepends=True))))
    again = split_file(shuffled, {"train": 0.8, "validation": 0.1, "test": 0.1}, seed=3)
    assert {k: [json.loads(line)["id"] for line in open(again[k]["file"])] for k in again} == ids
    other = split_file(data, {"train": 0.8, "validation": 0.1, "test": 0.1}, seed=4)
    assert {k: [json.loads(line)["id"] for line in open(other[k]["file"])] for k in other} != ids
    with pytest.raises(UserError, match="add up to 1"):
        split_file(data, {"train": 0.8, "test": 0.1})


def test_a_bad_split_is_refused_before_any_request(tmp_path):
    """Checked before the crawl, not at its end: the closed port is never tried (that would be a CollectError)."""
    with pytest.raises(UserError, match=r"--split: fractions must be non-negative and add up to 1"):
        collect(venue="ICLR.cc/2024/Conference", baseurl="http://127.0.0.1:9", output_file=str(tmp_path / "o.jsonl"),
                split={"train": 0.8, "test": 0.3}, max_attempts=1, retry_wait_s=0.0)
    assert not (tmp_path / "o.jsonl").exists()


def test_pairs_file_over_an_input_is_refused_and_reviewless_papers_or_bad_ratings_are_named(paper_pdfs, tmp_path):
    pdf_dir = tmp_path / "pdfs"
    pdf_dir.mkdir()
    for name in ("paper1", "paper2"):
        (pdf_dir / f"{name}.pdf").write_bytes(paper_pdfs[name])
    reviews = tmp_path / "reviews.jsonl"
    lines = [{"id": "paper1", "text": "The paper is clear and the method is sound.", "rating": 7},
             {"id": "paper2", "reviews": []}]
    reviews.write_text("".join(json.dumps(x) + "\n" for x in lines))
    out = tmp_path / "out.jsonl"
    for pairs in (out, reviews):
        with pytest.raises(UserError, match="--pairs_file=.* is the input file"):
            collect(output_file=str(out), pdf_dir=str(pdf_dir), reviews_file=str(reviews), pairs_file=str(pairs),
                    progress=False)
    assert json.loads(reviews.read_text().splitlines()[0]) == lines[0]
    summary = collect(output_file=str(out), pdf_dir=str(pdf_dir), reviews_file=str(reviews), progress=False)
    assert summary["left_out"] == {"no_reviews": ["paper2"]}
    assert len(read_records(out).records) == 1  # no line the readers refuse ('reviews' must be non-empty)
    for bad, problem in [({"id": "paper1", "text": "Sound.", "rating": True}, "'rating' must be a finite number"),
                         ('{"id": "paper1", "text": "Sound.", "rating": NaN}', "'rating' must be a finite number"),
                         ({"id": "paper1", "reviews": "Sound."}, "'reviews' must be a list")]:
        reviews.write_text((bad if isinstance(bad, str) else json.dumps(bad)) + "\n")
        with pytest.raises(UserError, match=f"reviews.jsonl:1.*{problem}"):
            collect(output_file=str(tmp_path / "x.jsonl"), pdf_dir=str(pdf_dir), reviews_file=str(reviews),
                    progress=False)


def test_an_output_file_with_a_line_that_is_not_utf8_is_named_not_a_traceback(tmp_path):
    from lightning_review.collect.output import PaperWriter

    out = tmp_path / "out.jsonl"
    out.write_bytes(b'{"id": "a"}\n{"id": "\xff"}\n{"id": "c"')  # a cut last line too
    with pytest.raises(UserError, match=r"out.jsonl:2: not UTF-8.*--overwrite true"):
        PaperWriter(out)
    out.write_bytes(b'{"id": "a"}\n{"id": "c"')
    with PaperWriter(out) as writer:
        assert writer.done == {"a"} and writer.repaired
    assert out.read_bytes() == b'{"id": "a"}\n'
