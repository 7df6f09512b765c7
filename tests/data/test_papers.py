"""Which records are one paper: by id, or by text up to whitespace; one id with two texts is found."""

from lightning_review.data.papers import count_papers, id_conflicts, looks_swapped, paper_groups
from lightning_review.data.records import Record


def rec(i, paper, paper_id=None, review="A review of reasonable length."):
    return Record(id=f"r{i}", paper=paper, review=review, paper_id=paper_id, where=f"d.jsonl:{i}")


def test_records_of_one_id_whose_texts_differ_by_whitespace_are_one_paper():
    records = [rec(1, "Paper A.", "a"), rec(2, "Paper A.\n\n", "a"), rec(3, "  Paper   A.", "a"), rec(4, "B", "b")]
    assert paper_groups(records) == [[0, 1, 2], [3]]
    assert id_conflicts(records) == []


def test_without_an_id_the_text_decides_and_an_id_joins_records_sharing_its_text():
    records = [rec(1, "Paper A."), rec(2, "Paper A.\n"), rec(3, "Paper B."), rec(4, "Paper B.", "b"),
               rec(5, "Paper C.", "b")]
    # r4 carries id b and text B, so r3 (text B, no id) and r5 (id b) are the same paper as r4
    assert paper_groups(records) == [[0, 1], [2, 3, 4]]
    assert count_papers(records) == 2


def test_one_id_with_different_texts_is_a_conflict_naming_where_each_text_is():
    records = [rec(1, "Paper A.", "x"), rec(2, "Paper A. ", "x"), rec(3, "Another paper.", "x"), rec(4, "C", "c")]
    (conflict,) = id_conflicts(records)
    assert conflict.paper_id == "x" and conflict.wheres == (("d.jsonl:1", "d.jsonl:2"), ("d.jsonl:3",))
    assert "paper id 'x' has 2 different paper texts" in conflict.describe() and "d.jsonl:3" in conflict.describe()


def test_reviews_longer_than_papers_look_swapped():
    assert looks_swapped([rec(1, "short", review="a much longer text than the paper")]) is not None
    assert looks_swapped([rec(1, "a long paper text, longer than its review", review="short review")]) is None
    assert looks_swapped([]) is None
