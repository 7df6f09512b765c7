"""No address shown or recorded holds a password, whatever its shape: ``user:pass@host`` without a scheme read as the
scheme ``user`` (the password was shown by "no answer from ..."), a password holding ``/`` read as the host, blanks."""

import httpx2
import openai
import pytest

from lightning_review.errors import UserError
from lightning_review.generation.api import ApiGenerator
from lightning_review.generation.decoding import DecodingSettings
from lightning_review.openai_client import (HIDDEN_ADDRESS, LazyAsyncOpenAI, check_base_url, public_url,
                                            unreachable_message)
from lightning_review.redaction import redact_userinfo

SECRET = "sk-secret-pass"

SHAPES = {  # the address given -> as shown
    "scheme-less userinfo": (f"user:{SECRET}@localhost:8000/v1", "localhost:8000/v1"),
    "scheme-less, password only": (f"{SECRET}@localhost:8000", "localhost:8000"),
    "http userinfo": (f"http://user:{SECRET}@host/v1/", "http://host/v1"),
    "upper-case scheme, padded": (f"  HTTPS://user:{SECRET}@host/v1 ", "https://host/v1"),
    "network-path reference": (f"//user:{SECRET}@host/v1", "host/v1"),
    "two @": (f"http://user@{SECRET}@host/v1", "http://host/v1"),
    "api_key query": (f"http://host/v1?api_key={SECRET}", "http://host/v1"),
    "key query and fragment": (f"host:8000/v1?key={SECRET}#{SECRET}", "host:8000/v1"),
    "path parameters": (f"http://host/v1;key={SECRET}", "http://host/v1"),
    "a scheme later in the text": (f"user:{SECRET}@host/v1?next=http://x", "host/v1"),
    "blank in the password": (f"http://user:sk-secret pass@host/v1", HIDDEN_ADDRESS),
    "blank in the host": (f"http://user:{SECRET}@ho st/v1", HIDDEN_ADDRESS),
    "slash in the password": ("http://user:sk-secret/pass@host/v1", HIDDEN_ADDRESS),
    "hash in the password": ("http://user:sk-secret#pass@host/v1", HIDDEN_ADDRESS),
    "question mark in the password": ("http://user:12345?sk-secret-pass@host/v1", HIDDEN_ADDRESS),
    "password as the port": (f"host:{SECRET}/v1", HIDDEN_ADDRESS),
    "broken IPv6 host": (f"user:{SECRET}@[::1:8000/v1", HIDDEN_ADDRESS),
    "line break": (f"http://host/v1\nuser:{SECRET}@other", HIDDEN_ADDRESS),
    "text before the scheme": (f"my http://user:{SECRET}@host", HIDDEN_ADDRESS),
}


@pytest.mark.parametrize("case", list(SHAPES))
def test_no_shape_of_address_shows_its_password(case, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # the password is no environment value to be searched for
    given, shown = SHAPES[case]
    assert public_url(given) == shown
    assert "secret" not in public_url(given) and "12345" not in public_url(given)


@pytest.mark.parametrize("given, shown", [("https://api.openai.com/v1", "https://api.openai.com/v1"),
                                          ("http://[::1]:8000/v1/", "http://[::1]:8000/v1"),
                                          ("http://localhost:8000", "http://localhost:8000"),
                                          ("localhost:8000/v1", "localhost:8000/v1")])
def test_plain_addresses_are_shown_as_they_are(given, shown):
    assert public_url(given) == shown


@pytest.mark.parametrize("given", ["http://user:sk-secret/pass@host/v1", "http://user:sk-secret pass@host/v1",
                                   "http://host:sk-secret-pass/v1"])
def test_an_address_whose_password_cannot_be_told_apart_is_refused_without_it(given):
    """The openai client would read ``sk-secret`` as a port (httpx's InvalidURL names it) or send it as the host."""
    with pytest.raises(UserError) as refused:
        check_base_url(given, "OPENAI_BASE_URL")
    message = str(refused.value)
    assert message.startswith("OPENAI_BASE_URL cannot be read as an address (not shown: it may hold a password)")
    assert "%2F" in message and "secret" not in message


def test_no_answer_from_a_scheme_less_address_does_not_show_its_password():
    """What the helper saw: the client's request URL ``user:pass@host/...`` shown whole by "no answer from ..."."""
    request = httpx2.Request("POST", f"user:{SECRET}@localhost:8000/v1/chat/completions")
    message = unreachable_message(openai.APIConnectionError(request=request))
    assert message.startswith("no answer from localhost:8000/v1/chat/completions (Connection error.)")
    assert "secret" not in message


@pytest.mark.parametrize("text, shown", [
    (f"--base_url=user:{SECRET}@localhost:8000/v1", "--base_url=localhost:8000/v1"),
    (f"at http://user:{SECRET}@host/v1: refused", "at http://host/v1: refused"),
    (f"got 'user:{SECRET}@[::1]:8000'", "got '[::1]:8000'"),
    (f"--judges openai:m@user:{SECRET}@host/v1", "--judges openai:m@host/v1"),
    ("--judges openai:gpt-4@http://host/v1", "--judges openai:gpt-4@http://host/v1"),  # a judge spec, no password
    ("write to someone@example.org", "write to someone@example.org"),  # an email: no ':' before its '@'
])
def test_free_text_loses_the_credentials_of_its_addresses(text, shown):
    assert redact_userinfo(text) == shown


def test_a_client_or_generator_made_outside_the_commands_checks_its_address(monkeypatch, tmp_path):
    from lightning_review.answer_cache import AnswerCache

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(UserError, match=r"^--base_url must start with http:// or https:// \(got localhost:8000/v1\)$"):
        LazyAsyncOpenAI(f"user:{SECRET}@localhost:8000/v1", None, 0, 1.0).get()
    monkeypatch.setenv("OPENAI_BASE_URL", f"user:{SECRET}@localhost:8000/v1")
    with pytest.raises(UserError, match=r"^OPENAI_BASE_URL must start with http:// or https:// \(got localhost:8000"):
        LazyAsyncOpenAI(None, None, 0, 1.0).get()
    with pytest.raises(UserError, match="^--base_url cannot be read as an address"):
        ApiGenerator("gpt-4-1106-preview", AnswerCache(tmp_path / "c.sqlite"), DecodingSettings(max_new_tokens=8),
                     base_url="http://user:sk-secret/pass@host/v1", max_context=None)
