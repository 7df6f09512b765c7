"""The reviews file of --pdf_dir names its papers by the readers' rule (data.records.record_id): a string, or a
whole number as its digits (the PDF 12.pdf); 12.0, true, null or a list are an error naming the file, the line and
the field, not the paper "12.0" (looked for as 12.0.pdf) or "True" silently."""

from __future__ import annotations

import json
import re

import pytest

from lightning_review.collect.folder import read_folder
from lightning_review.data.records import RecordError

REVIEW = {"text": "The baselines are weak.", "rating": 5}


def reviews_file(path, lines):
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


@pytest.mark.parametrize("line, shown", [
    ({"id": 12.0}, r"field 'id' is 12\.0 \(a float\).*write it as a string \(\"id\": \"12\"\)"),
    ({"id": True}, r"field 'id' is true \(a boolean\)"),
    ({"id": None, "paper_id": "p2"}, r"field 'id' is null"),
    ({"paper_id": ["p2"]}, r"field 'paper_id' is \[\"p2\"\] \(a list\)"),
])
def test_an_id_that_is_no_string_nor_whole_number_is_named_with_its_line(tmp_path, line, shown):
    path = reviews_file(tmp_path / "reviews.jsonl", [{"id": "p1", "reviews": [REVIEW]}, {**line, **REVIEW}])
    with pytest.raises(RecordError) as exc:
        read_folder(tmp_path, path)
    message = str(exc.value)
    assert re.match(rf"^{re.escape(str(path))}:2: {shown}", message), message
    assert "leave the field out" not in message and exc.value.reason == "bad_id"


def test_a_whole_number_is_its_digits_and_paper_id_is_read_too(tmp_path):
    (tmp_path / "12.pdf").write_bytes(b"%PDF-1.4\n")
    path = reviews_file(tmp_path / "reviews.jsonl", [{"id": 12, **REVIEW}, {"id": "12", **REVIEW},
                                                     {"paper_id": "p3", **REVIEW}])
    papers, unreviewed = read_folder(tmp_path, path)
    assert [(p.id, len(p.reviews), p.pdf and p.pdf.name) for p in papers] == [("12", 2, "12.pdf"), ("p3", 1, None)]
    assert unreviewed == []


def test_a_blank_or_missing_id_names_the_line_and_the_fix(tmp_path):
    for line in ({"id": " ", **REVIEW}, REVIEW):
        path = reviews_file(tmp_path / "reviews.jsonl", [{"id": "p1", **REVIEW}, line])
        with pytest.raises(RecordError, match=rf"^{re.escape(str(path))}:2: each line needs the 'id' of its paper "
                                              r"\(the PDF's name without \.pdf\); add it or remove the line$"):
            read_folder(tmp_path, path)
