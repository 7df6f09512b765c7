"""The line a run prints when the openai client retries a request: read from the client's own note (its wait and
count, never a header or key); calls in flight fail together, so a retry no deeper than one shown, within
``every_s`` of the last line, is not repeated."""

import logging

from lightning_review.openai_client import RETRY_LOGGER, RetryNotice, show_retries


def note(retry: int, of: int = 5, wait: float = 0.4321) -> logging.LogRecord:
    return logging.LogRecord(RETRY_LOGGER, logging.INFO, __file__, 1, "Retrying request in %f seconds (retry %i of %s)",
                             (wait, retry, of), None)


def test_each_deeper_retry_is_one_line_and_calls_failing_together_are_one(capsys):
    handler = RetryNotice(every_s=3600)
    for retry in (1, 1, 1, 2, 2, 1):
        handler.emit(note(retry))
    handler.emit(logging.LogRecord(RETRY_LOGGER, logging.INFO, __file__, 1, "something else", (), None))
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"note: an API request timed out or failed (no connection, 429 or 5xx); the openai client "
                     f"retries it (retry {n} of 5, in 0.4 s); --timeout_s sets the seconds a request may take"
                     for n in (1, 2)]


def test_after_every_s_a_retry_is_said_again_and_the_handler_is_installed_once(capsys):
    handler = RetryNotice(every_s=0)
    handler.emit(note(1))
    handler.emit(note(1))
    assert len(capsys.readouterr().err.splitlines()) == 2
    assert show_retries() is show_retries()
    assert logging.getLogger(RETRY_LOGGER).isEnabledFor(logging.INFO)
