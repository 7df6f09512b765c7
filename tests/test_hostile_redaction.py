"""redact_userinfo against hostile text: a password holding a raw '@' (common: 'p@ss') must go whole, not leave its
tail after the first '@'; so must the password of an address with no host after it (``http://u:pw@``, which the
misplaced-flag message echoes whole)."""

import subprocess
import sys

import pytest

from lightning_review.redaction import redact_userinfo
from tests.conftest import ROOT

SECRET = "s3cret-pw"


@pytest.mark.parametrize("text, shown", [
    (f"at http://u:p@{SECRET}@host/v1: refused", "at http://host/v1: refused"),  # '@' raw in the password
    (f"at http://u:{SECRET}@@host/v1", "at http://host/v1"),
    (f"got 'u:p@{SECRET}@host:8000'", "got 'host:8000'"),                       # scheme-less, '@' in the password
    (f"--base_url=http://u:{SECRET}@", "--base_url=http://"),                     # no host after it
    (f"--base_url http://u:{SECRET}@ and more", "--base_url http:// and more"),
])
def test_no_part_of_a_password_is_left(text, shown):
    assert redact_userinfo(text) == shown


def test_a_misplaced_flag_message_does_not_echo_the_password_of_an_address_without_host(tmp_path):
    """The real CLI: the flag-before-command message repeats the command line, through redact_keys."""
    proc = subprocess.run([sys.executable, "-m", "lightning_review", f"--base_url=http://u:{SECRET}@", "generate"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode != 0 and "comes before the command" in proc.stderr, proc.stderr[-2000:]
    assert SECRET not in proc.stdout + proc.stderr


@pytest.mark.parametrize("text, shown", [
    (f"--base_url=http://u:{SECRET}/x@host/v1", "--base_url=http://host/v1"),  # a raw '/' in the password
    (f"at https://u:a?{SECRET}@host:8000/v1 now", "at https://host:8000/v1 now"),
    (f"at https://u:a#{SECRET}@host", "at https://host"),
])
def test_a_password_holding_a_raw_slash_question_mark_or_hash_goes_whole(text, shown):
    """public_url hides such an address (where its password ends cannot be told); in free text a ':' after '//'
    followed by no port number starts a password, which runs to the word's last '@'."""
    assert redact_userinfo(text) == shown


@pytest.mark.parametrize("text", [
    "see https://github.com/org/repo@v1.2",          # no ':' before the path
    "at http://host:8000/v1/users/me@example.org",   # a port, then a path holding an '@'
    "at http://[::1]:8000/a@b",
    "at https://host:443?who=me@example.org",
])
def test_a_port_or_a_path_with_an_at_sign_is_no_password(text):
    assert redact_userinfo(text) == text


def test_a_misplaced_flag_message_does_not_echo_a_password_holding_a_slash(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "lightning_review", f"--base_url=http://u:{SECRET}/x@host/v1",
                           "generate"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode != 0 and "generate --base_url=http://host/v1" in proc.stderr, proc.stderr[-2000:]
    assert SECRET not in proc.stdout + proc.stderr
