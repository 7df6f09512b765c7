"""generate's counts (concurrency, batch size, retries, limit) checked before any model loads or call is made."""

import json

import pytest

from lightning_review.errors import UserError
from lightning_review.generation.command import generate


@pytest.mark.parametrize("setting,value,message", [
    ("concurrency", 0, r"--concurrency must be a whole number of 1 or more \(API calls in flight, e\.g\. 8\), got 0"),
    ("batch_size", 0, r"--batch_size must be a whole number of 1 or more"),
    ("max_retries", -1, r"--max_retries must be a whole number of 0 or more"),
    ("limit", 0, r"--limit must be a whole number of 1 or more \(the first N papers; leave it out for all\)"),
])
def test_a_count_out_of_range_is_named_and_nothing_is_written(tmp_path, setting, value, message):
    papers = tmp_path / "papers.jsonl"
    papers.write_text(json.dumps({"id": "p1", "paper": "A paper."}) + "\n")
    out = tmp_path / "reviews.jsonl"
    with pytest.raises(UserError, match=message):
        generate(str(papers), output_file=str(out), api_model="gpt-4o", base_url="http://127.0.0.1:9/v1",
                 **{setting: value})
    assert not out.exists() and not (tmp_path / "reviews.jsonl.lock").exists()
