"""What ``evaluate`` reads, as a careless user gives it: a bad human line stops the run (strict) or is skipped,
counted and flagged (skip); a system file may not review a paper twice; a paper without human reviews is the human
file's fault, named there; papers a system did not review and its empty reviews are flagged with their counts."""

import asyncio
import json
import re

import pytest

from lightning_review.data.records import RecordError
from lightning_review.evaluate.command import load_input
from lightning_review.evaluate.evaluator import EvaluationInput, evaluate
from lightning_review.evaluate.report import markdown
from tests.conftest import write_jsonl
from tests.evaluate.test_controls import WordJudge

REVIEW = "The baselines are weak and old. The proofs are hard to follow."


def paper(k, reviews=None):
    return {"id": f"p{k}", "title": f"Paper {k}", "paper": f"Paper {k} studies graph diffusion. " * 5,
            "reviews": [{"text": REVIEW, "rating": 5}] if reviews is None else reviews}


def system_file(path, ids, review=REVIEW):
    return str(write_jsonl(path, [{"id": i, "review": review} for i in ids]))


def test_a_corrupt_human_line_stops_the_run_and_names_the_line(tmp_path):
    human = write_jsonl(tmp_path / "human.jsonl", [paper(0), '{"id": "p1", "paper": ', paper(2)])
    ours = system_file(tmp_path / "ours.jsonl", ["p0", "p2"])
    with pytest.raises(RecordError, match=rf"^{re.escape(str(human))}:2: not valid JSON.*on_bad_record skip"):
        load_input(str(human), {"ours": ours})


def test_skip_counts_lists_and_flags_what_it_left_out(tmp_path):
    human = write_jsonl(tmp_path / "human.jsonl", [paper(0), '{"id": "p1", "paper": ', paper(2)])
    ours = system_file(tmp_path / "ours.jsonl", ["p0", "p1", "p2"])  # p1's human line was the corrupt one
    rejects = tmp_path / "rejects.jsonl"
    data = load_input(str(human), {"ours": ours}, on_bad_record="skip", rejects_file=str(rejects))
    assert sorted(data.papers) == ["p0", "p2"] and sorted(data.systems["ours"]) == ["p0", "p2"]
    assert data.flags["human_file"] == [{"file": str(human), "skipped": {"invalid_json": 1}, "duplicates_dropped": 0,
                                         "rejects_file": str(rejects)}]
    assert data.flags["not_in_human_file"] == [{"system": "ours", "papers": 1, "of": 3, "ids": ["p1"]}]
    assert [json.loads(line)["where"] for line in rejects.read_text().splitlines()] == [f"{human}:2"]
    report = markdown(asyncio.run(evaluate(data, [WordJudge()], resamples=20)))
    assert f"- {human}: bad records skipped: 1 invalid_json; 0 duplicate reviews dropped; listed in {rejects}" in report
    assert "- ours: 1 of its 3 reviews are of papers the human file does not have after skipping bad records " \
           "(e.g. p1); left out" in report


def test_a_system_file_reviewing_a_paper_twice_is_refused_with_both_lines(tmp_path):
    human = write_jsonl(tmp_path / "human.jsonl", [paper(0), paper(1)])
    ours = system_file(tmp_path / "ours.jsonl", ["p0", "p1", "p0"])
    with pytest.raises(RecordError, match=rf"^{re.escape(ours)}:3: a second review of paper 'p0' \(the first is on "
                                          r"line 1\)"):
        load_input(str(human), {"ours": ours})


def test_a_paper_with_no_human_reviews_is_blamed_on_the_human_file(tmp_path):
    human = write_jsonl(tmp_path / "human.jsonl", [paper(0), paper(1, reviews=[])])
    ours = system_file(tmp_path / "ours.jsonl", ["p0", "p1"])
    with pytest.raises(RecordError) as error:
        load_input(str(human), {"ours": ours})
    message = str(error.value)
    assert message.startswith(f"{human}:2: ") and "'reviews' must be a non-empty list" in message
    assert ours not in message
    # skipped on request: counted, and the system's review of that paper left out with a flag, not an error
    data = load_input(str(human), {"ours": ours}, on_bad_record="skip")
    assert data.flags["human_file"][0]["skipped"] == {"no_reviews": 1} and list(data.systems["ours"]) == ["p0"]


def test_missing_papers_and_empty_reviews_are_flagged_with_their_counts():
    humans = {f"p{k}": [REVIEW] for k in range(4)}
    data = EvaluationInput(humans, {"ours": {"p0": REVIEW, "p1": " \n ", "p2": REVIEW},
                                    "theirs": {f"p{k}": REVIEW for k in range(4)}})
    result = asyncio.run(evaluate(data, [WordJudge()], resamples=20))
    assert result["flags"]["missing_papers"] == [{"system": "ours", "papers": 1, "of": 4, "ids": ["p3"]}]
    assert result["flags"]["empty_reviews"] == [{"system": "ours", "papers": 1, "of": 3, "ids": ["p1"]}]
    assert result["systems"]["ours"]["words"]["7"]["papers"] == 3
    report = markdown(result)
    assert "- ours: no review of 1 of the 4 papers (e.g. p3); its scores and comparisons cover only the papers it " \
           "reviewed" in report
    assert "- ours: 1 of its 3 reviews are empty or whitespace only (e.g. p1); judged as written, they score no " \
           "hits" in report
    assert "theirs:" not in report and "- none" not in report


def test_a_warning_about_the_human_file_goes_to_stderr_not_stdout(tmp_path, capsys):
    human = write_jsonl(tmp_path / "human.jsonl", [{**paper(k), "shelf": "X"} for k in range(2)])
    ours = system_file(tmp_path / "ours.jsonl", ["p0", "p1"])
    load_input(str(human), {"ours": ours})
    printed = capsys.readouterr()
    assert printed.err.startswith(f"warning: {human}: fields not read (ignored): 'shelf' (first at line 1)")
    assert "warning:" not in printed.out  # stdout may be piped as data
