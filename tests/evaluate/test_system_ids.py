"""A system file's ids are read by the human file's rule (data.records.record_id): a string, or a whole number as
its digits; 12.0, true, null or a list are an error naming the file, the line and the fix, not "12.0", "True",
"None" or "['p0']" silently (which then matched no paper, or the wrong one)."""

from __future__ import annotations

import re

import pytest

from lightning_review.data.records import RecordError
from lightning_review.evaluate.command import load_input
from tests.conftest import write_jsonl

REVIEW = "The baselines are weak and old. The proofs are hard to follow."


def human(tmp_path):
    return str(write_jsonl(tmp_path / "human.jsonl", [
        {"id": str(k), "title": f"Paper {k}", "paper": f"Paper {k} studies graph diffusion. " * 5,
         "reviews": [{"text": REVIEW, "rating": 5}]} for k in (12, 13)]))


@pytest.mark.parametrize("bad, shown", [(12.0, r'12\.0 \(a float\).*write it as a string \("id": "12"\)'),
                                        (True, r"true \(a boolean\)"), (None, r"null"),
                                        (["12"], r'\["12"\] \(a list\)'), ({"n": 12}, r'\{"n": 12\} \(an object\)')])
def test_an_id_that_is_no_string_nor_whole_number_is_named_with_its_line(tmp_path, bad, shown):
    ours = str(write_jsonl(tmp_path / "ours.jsonl", [{"id": "13", "review": REVIEW}, {"id": bad, "review": REVIEW}]))
    with pytest.raises(RecordError) as exc:
        load_input(human(tmp_path), {"ours": ours})
    message = str(exc.value)
    assert re.match(rf"^{re.escape(ours)}:2: field 'id' is {shown}", message), message
    assert "an id must be a string" in message and "\n" not in message
    assert "leave the field out" not in message  # a system line cannot do without its id
    assert exc.value.reason == "bad_id"


def test_a_whole_number_id_is_the_paper_of_those_digits(tmp_path):
    ours = str(write_jsonl(tmp_path / "ours.jsonl", [{"id": 12, "review": REVIEW}, {"id": "13", "review": REVIEW}]))
    data = load_input(human(tmp_path), {"ours": ours})
    assert sorted(data.systems["ours"]) == ["12", "13"]
    twice = str(write_jsonl(tmp_path / "twice.jsonl", [{"id": 12, "review": REVIEW}, {"id": "12", "review": REVIEW}]))
    with pytest.raises(RecordError, match=rf"^{re.escape(twice)}:2: a second review of paper '12'"):
        load_input(human(tmp_path), {"ours": twice})


def test_a_blank_or_missing_id_is_a_line_without_id(tmp_path):
    for i, line in enumerate(({"id": " ", "review": REVIEW}, {"review": REVIEW})):
        ours = str(write_jsonl(tmp_path / f"ours{i}.jsonl", [{"id": "12", "review": REVIEW}, line]))
        with pytest.raises(RecordError, match=rf"^{re.escape(ours)}:2: a system output line needs 'id' \(the paper\) "
                                              r"and 'review'.*fix or remove the line$"):
            load_input(human(tmp_path), {"ours": ours})
