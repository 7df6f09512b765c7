"""Every rating a record may carry becomes a rating line that parse_rating reads back as the same number; a rating no
review scale has (1e308, NaN, a 400-digit integer) is refused, naming file:line, the value and the fix."""

import random
import re

import pytest

from lightning_review.data.rating_line import format_rating, parse_rating, plain_number, training_target
from lightning_review.data.readers import read_records
from lightning_review.data.records import RATING_LIMIT, Record, RecordError, check_rating
from tests.conftest import write_jsonl

REVIEW = "The method is sound but the evaluation is thin; add the ablation of the loss."


@pytest.mark.parametrize("rating", [1e308, -1e308, 1001, -1000.5, 10 ** 400, float("nan"), float("inf")])
def test_a_rating_no_review_scale_has_is_refused_naming_the_value_and_the_fix(rating):
    with pytest.raises(RecordError, match=r"^d\.jsonl:3: field 'rating' .*" + re.escape(repr(rating)[:20])
                       + r".*give a number on the review scale \(e\.g\. 1-10\) or null") as caught:
        check_rating(rating, "d.jsonl:3")
    assert caught.value.reason == "bad_rating"


@pytest.mark.parametrize("rating", [1e-05, 0.1 + 0.2, 6.333333333333333, 12345.678 / 100, -3, -0.0, 7, 1000,
                                    -RATING_LIMIT, 999.9999999999999, 5e-324])
def test_every_accepted_rating_reads_back_from_its_line_as_the_same_number(rating):
    check_rating(rating, "here")
    line = format_rating(rating)
    assert "e" not in line.removeprefix("Rating:")  # no exponent, which the parser does not read
    record = Record(id="p#0", paper="A paper.", review=REVIEW, rating=rating)
    assert parse_rating(training_target(record, True)) == rating


def test_random_ratings_round_trip():
    generator = random.Random(0)
    for _ in range(2000):
        rating = generator.uniform(-RATING_LIMIT, RATING_LIMIT) * 10 ** -generator.randint(0, 12)
        assert parse_rating(format_rating(check_rating(rating, "here"))) == rating


def test_the_line_keeps_integral_ratings_short_and_writes_no_exponent():
    assert [format_rating(r) for r in (7, 7.0, 6.5, 10, 1e-05)] == [
        "Rating: 7", "Rating: 7", "Rating: 6.5", "Rating: 10", "Rating: 0.00001"]
    assert plain_number(12345678) == "12345678"  # ':g' wrote 1.23457e+07


def test_a_data_file_with_such_a_rating_names_its_line_under_strict_and_counts_it_under_skip(tmp_path):
    good = {"paper": "A paper.", "review": REVIEW, "rating": 6}
    path = write_jsonl(tmp_path / "d.jsonl", [good, {**good, "paper": "B", "rating": 1e308}])
    with pytest.raises(RecordError, match=r"d\.jsonl:2: field 'rating' is 1e\+308, not a review rating"):
        read_records(path)
    report = read_records(path, policy="skip")
    assert len(report.records) == 1 and report.rejected == {"bad_rating": 1}


def test_a_number_too_long_for_json_names_its_line(tmp_path):
    """json.loads refuses an integer of more than 4300 digits with a ValueError, not a JSONDecodeError."""
    path = write_jsonl(tmp_path / "d.jsonl", ['{"paper": "A", "review": "R", "rating": ' + "1" * 5000 + "}"])
    with pytest.raises(RecordError, match=r"d\.jsonl:1: a number of more than 4300 digits, too long to read"):
        read_records(path)
