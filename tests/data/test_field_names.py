"""field_names: what counts as a plain misspelling of a field of ours (the readers' "did you mean" hint)."""

import pytest

from lightning_review.data.field_names import edit_distance, misspelling_edits, normal_name


def test_case_and_separators_do_not_count():
    assert normal_name("Is_Meta-Review") == "ismetareview"
    assert misspelling_edits("Review", "review") == 0
    assert misspelling_edits("paper id", "paper_id") == 0


@pytest.mark.parametrize("a, b, edits", [("ratng", "rating", 1), ("reveiw", "review", 1), ("review", "review", 0),
                                         ("abc", "", 3), ("ab", "ba", 1), ("kitten", "sitting", 3)])
def test_edit_distance_counts_a_swap_of_neighbours_as_one(a, b, edits):
    assert edit_distance(a, b) == edits == edit_distance(b, a)


@pytest.mark.parametrize("name, intended, edits", [
    ("ratng", "rating", 1), ("reveiw", "review", 1), ("recomendation", "recommendation", 1),
    ("recomendaton", "recommendation", 2), ("ID", "id", 0),
    ("ids", "id", None),  # a name of up to 3 letters must match exactly
    ("reviewer", "review", None),  # two edits from a 6-letter name: not a plain misspelling
    ("rcmndtn", "recommendation", None)])
def test_a_plain_misspelling_is_a_few_edits_fewer_for_short_names(name, intended, edits):
    assert misspelling_edits(name, intended) == edits
