"""A login refusal whose text repeats what was sent (as a proxy or a misconfigured server may): collect's message
quotes the server, but never the account or the password it was given, nor any recoverable part of them."""

from __future__ import annotations

import json

import pytest

from lightning_review.collect.client import CollectError

from .openreview_server import USERNAME
from .test_command import run


def refused_login_message(server, tmp_path, monkeypatch, password: str, reply) -> str:
    """collect's error when every login is answered by ``reply(handler, request body)``."""
    handle = server._handle

    def answering(handler, method):
        if handler.path.split("?")[0].removeprefix("/v1") == "/login":
            return reply(handler, handler.rfile.read(int(handler.headers.get("Content-Length") or 0)))
        return handle(handler, method)

    monkeypatch.setattr(server, "_handle", answering)
    monkeypatch.setenv("OPENREVIEW_USERNAME", USERNAME)
    monkeypatch.setenv("OPENREVIEW_PASSWORD", password)
    with pytest.raises(CollectError) as error:
        run(server, tmp_path / "out.jsonl")
    return str(error.value)


def echo_fields(server):
    def reply(handler, body):
        sent = json.loads(body)
        return server._send(handler, 400, {"name": "InvalidCredentials", "status": 400,
                                           "message": f"no account {sent['id']} with password {sent['password']}"})
    return reply


def test_a_refusal_that_echoes_the_credentials_does_not_show_them(server, tmp_path, monkeypatch):
    message = refused_login_message(server, tmp_path, monkeypatch, "wrong-password-123", echo_fields(server))
    assert "refused the login" in message and "no account" in message  # the server's words are kept
    assert "wrong-password-123" not in message and USERNAME not in message
    assert "<OPENREVIEW_PASSWORD>" in message and "<OPENREVIEW_USERNAME>" in message


def test_a_password_that_contains_the_username_is_not_shown_in_part(server, tmp_path, monkeypatch):
    """Replacing the account name first would leave ``<OPENREVIEW_USERNAME>!7x``: the password, to anyone who
    knows the account."""
    message = refused_login_message(server, tmp_path, monkeypatch, f"{USERNAME}!7x", echo_fields(server))
    assert "with password <OPENREVIEW_PASSWORD>" in message and "!7x" not in message, message


def test_a_proxy_echoing_the_raw_json_body_does_not_show_the_password(server, tmp_path, monkeypatch):
    """The body is JSON: a password with a quote or a backslash arrives escaped, which a plain replace misses."""
    def reply(handler, body):
        return server._send(handler, 400, b"rejected request body: " + body, content_type="text/plain")

    message = refused_login_message(server, tmp_path, monkeypatch, 'Tr0ub4dor"&3\\x', reply)
    assert "rejected request body" in message and "Tr0ub4dor" not in message, message


def test_a_long_text_cut_to_length_does_not_cut_the_password_in_two(monkeypatch):
    """A refusal that is not a name/message dict is cut to 200 characters, after the credentials are replaced: a
    cut through the password would leave its first part unmatched."""
    from lightning_review.collect.client import _server_message

    monkeypatch.setenv("OPENREVIEW_PASSWORD", "correct-horse-battery-staple")
    message = _server_message(Exception("x" * 190 + " correct-horse-battery-staple"))
    assert "correct-h" not in message and len(message) == 200, message
