import time

from lightning_review.collect.client import make_client

from .openreview_server import VENUE


def test_requests_are_rate_limited(server):
    fetcher = make_client(2, server.url, requests_per_second=20, retry_wait_s=0.01)
    start = time.monotonic()
    for _ in range(6):
        fetcher("the venue group", fetcher.client.get_group, VENUE)
    assert time.monotonic() - start >= 5 / 20 - 0.01
    assert len(server.requests) == 6
