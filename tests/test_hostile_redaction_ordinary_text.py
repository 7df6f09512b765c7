"""redact_userinfo (run on every tool error and echoed command line) leaves ordinary words that only look like
``user:password@host`` as they are: a Windows path holding an '@' (``C:\\Users\\me@corp\\...`` lost everything
before ``corp``) and a mailto: address (``mailto:john@example.com`` became ``example.com``)."""

import pytest

from lightning_review.redaction import redact_userinfo


@pytest.mark.parametrize("text", [
    r"error: C:\Users\me@corp\papers.jsonl: no such data file",  # a Windows path with an '@'
    r"--papers=D:\data\run@2\papers.jsonl",
    "write to mailto:john@example.com",                          # a mailto: address, no password
    "key:value@ in text",
])
def test_ordinary_text_is_left_as_it_is(text):
    assert redact_userinfo(text) == text
