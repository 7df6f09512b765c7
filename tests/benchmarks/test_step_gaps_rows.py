"""step_gaps.py --documents: each probed step is one packed row of documents of those lengths (a row of the length
mix), at --row tokens' budget; bad lengths are refused before anything loads."""

import argparse

import pytest

import step_gaps


def _args(**kw) -> argparse.Namespace:
    return argparse.Namespace(**{"tokens": 8192, "documents": None, "row": 16384, "warmup": 2, "probe_steps": 1,
                                 **kw})


def test_one_document_of_tokens_a_step_by_default():
    rows, row_length = step_gaps.probe_rows(_args(tokens=96), vocab_size=1000)
    assert row_length == 96 and len(rows) == 3
    assert all(len(row) == 1 and len(row[0]["input_ids"]) == 96 for row in rows)


def test_documents_are_packed_into_each_steps_row_at_the_row_budget():
    rows, row_length = step_gaps.probe_rows(_args(documents="40,30,20", row=128), vocab_size=1000)
    assert row_length == 128 and len(rows) == 3
    for row in rows:
        assert [len(d["input_ids"]) for d in row] == [40, 30, 20]
    assert rows[0] is rows[1]  # the same row every step, as one document of --tokens is


@pytest.mark.parametrize("documents,message", [("40,x", "positive token counts"), ("0,10", "positive token counts"),
                                               ("100,40", "do not fit a row of --row 128")])
def test_bad_documents_are_refused_before_anything_loads(documents, message, monkeypatch, capsys):
    monkeypatch.setattr(step_gaps.torch.cuda, "is_available", lambda: pytest.fail("checked the device first"))
    with pytest.raises(SystemExit, match=message):
        step_gaps.main(["--documents", documents, "--row", "128"])
