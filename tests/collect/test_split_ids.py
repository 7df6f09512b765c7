"""The split and the pairs file read a paper's id by the readers' rule (data.records.record_id): a string, or a
whole number as its digits; 12.0, true, null or a list are an error naming the file and line, not the ids "12.0",
"True", "None" silently (12.0 and 12 were two papers, so one paper could straddle two parts)."""

from __future__ import annotations

import json
import re

import pytest

from lightning_review.collect.split import split_file, write_pairs
from lightning_review.data.records import RecordError
from lightning_review.errors import UserError

SPLIT = {"train": 0.5, "test": 0.5}


def papers(path, ids):
    path.write_text("".join(json.dumps({"id": i, "paper": "x", "reviews": [{"text": "y", "rating": 5}]}) + "\n"
                            for i in ids))
    return path


@pytest.mark.parametrize("bad, shown", [(12.0, r'12\.0 \(a float\).*write it as a string \("id": "12"\)'),
                                        (True, r"true \(a boolean\)"), (None, r"null"),
                                        ([1], r"\[1\] \(a list\)")])
@pytest.mark.parametrize("step", [lambda p, o: split_file(p, SPLIT), write_pairs])
def test_an_id_that_is_no_string_nor_whole_number_is_named_with_its_line(tmp_path, bad, shown, step):
    data = papers(tmp_path / "papers.jsonl", ["p1", bad])
    with pytest.raises(RecordError) as exc:
        step(data, tmp_path / "pairs.jsonl")
    message = str(exc.value)
    assert re.match(rf"^{re.escape(str(data))}:2: field 'id' is {shown}", message), message
    assert "leave the field out" not in message and "\n" not in message  # a paper line cannot do without its id


def test_a_whole_number_is_its_digits_one_paper_with_its_string(tmp_path):
    data = papers(tmp_path / "papers.jsonl", [12, "13"])
    assert write_pairs(data, tmp_path / "pairs.jsonl") == 2
    assert [json.loads(line)["id"] for line in (tmp_path / "pairs.jsonl").read_text().splitlines()] == ["12#0", "13#0"]
    twice = papers(tmp_path / "twice.jsonl", [12, "12"])
    with pytest.raises(UserError, match=rf"^{re.escape(str(twice))}:2: paper '12' appears twice; one line a paper"):
        split_file(twice, SPLIT)


@pytest.mark.parametrize("step", [lambda p, o: split_file(p, SPLIT), write_pairs])
def test_a_blank_or_missing_id_names_the_line_and_the_fix(tmp_path, step):
    data = tmp_path / "papers.jsonl"
    for line in ({"id": "", "paper": "x", "reviews": []}, {"paper": "x", "reviews": []}):
        data.write_text(json.dumps({"id": "p1", "paper": "x", "reviews": []}) + "\n" + json.dumps(line) + "\n")
        with pytest.raises(RecordError, match=rf"^{re.escape(str(data))}:2: a paper without 'id' .*give each line its "
                                              r"paper's id .* or remove the line$"):
            step(data, tmp_path / "pairs.jsonl")
