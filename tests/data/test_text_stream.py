"""Text as one stream of windows (context-extension rows, perplexity windows)."""

from lightning_review.data.text_stream import stream_windows as windows


def test_windows_each_document_on_its_own_skips_and_counts_short_ones():
    docs = [list(range(10)), list(range(3)), list(range(100, 108))]
    chosen, skipped = windows(docs, 4, join=False, separator=None)
    assert chosen == [[0, 1, 2, 3], [4, 5, 6, 7], [100, 101, 102, 103], [104, 105, 106, 107]]
    assert skipped == 1


def test_windows_joined_put_the_separator_between_documents_and_drop_the_tail():
    chosen, skipped = windows([[1, 2, 3], [4, 5]], 3, join=True, separator=0)
    assert chosen == [[1, 2, 3], [0, 4, 5]]
    assert skipped == 0
    assert windows([[1, 2, 3], [4, 5]], 4, join=True, separator=0)[0] == [[1, 2, 3, 0]]
