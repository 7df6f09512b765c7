"""A login refusal whose text repeats what was sent (as a proxy or a misconfigured server may): collect's message
quotes the server, but never the account or the password it was given."""

from __future__ import annotations

import json

import pytest

from lightning_review.collect.client import CollectError

from .openreview_server import USERNAME
from .test_command import run


def test_a_refusal_that_echoes_the_credentials_does_not_show_them(server, tmp_path, monkeypatch):
    handle = server._handle

    def echoing(handler, method):
        if handler.path.split("?")[0].removeprefix("/v1") == "/login":
            body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
            sent = json.loads(body)
            return server._send(handler, 400, {"name": "InvalidCredentials", "status": 400,
                                               "message": f"no account {sent['id']} with password {sent['password']}"})
        return handle(handler, method)

    monkeypatch.setattr(server, "_handle", echoing)
    monkeypatch.setenv("OPENREVIEW_USERNAME", USERNAME)
    monkeypatch.setenv("OPENREVIEW_PASSWORD", "wrong-password-123")
    with pytest.raises(CollectError) as error:
        run(server, tmp_path / "out.jsonl")
    message = str(error.value)
    assert "refused the login" in message and "no account" in message  # the server's words are kept
    assert "wrong-password-123" not in message and USERNAME not in message
    assert "<OPENREVIEW_PASSWORD>" in message and "<OPENREVIEW_USERNAME>" in message
