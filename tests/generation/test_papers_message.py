"""generate's papers file needs a paper and an id a line, no review: its message about a missing paper says so."""

import pytest

from lightning_review.data.records import RecordError
from lightning_review.generation.command import unique_papers
from tests.conftest import write_jsonl


def test_a_line_without_a_paper_asks_for_what_generate_reads(tmp_path):
    path = write_jsonl(tmp_path / "papers.jsonl", [{"id": "p1", "paper": "A paper."}, {"id": "p2", "text": "B"}])
    with pytest.raises(RecordError) as caught:
        unique_papers(str(path))
    assert str(caught.value) == (f"{path}:2: missing field 'paper' (each line needs "
                                 '{"id": "...", "paper": "..."}); add it or remove the line')
