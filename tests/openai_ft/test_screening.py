"""The secret screening before upload: every kind of token it promises is found (also behind a JSON escape), words
of ordinary paper text are not, and a finding names the line and the kind, never the value.

The fake tokens are assembled at run time, so no token-shaped string sits in the repository for scanners to flag."""

import json

import pytest

from lightning_review.openai_ft.screening import KINDS, describe, listed, screen_file, screen_text


def _run(alphabet: str, n: int, start: int = 0) -> str:
    return "".join(alphabet[(start + 7 * i) % len(alphabet)] for i in range(n))


ALNUM = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
UPPER_DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

# kind -> a token of the issuer's published shape
TOKENS = {
    "openai_key": "sk-" + "proj-" + _run(ALNUM + "_-", 60),
    "anthropic_key": "sk-" + "ant-" + "api03-" + _run(ALNUM + "_-", 90),
    "huggingface_token": "hf" + "_" + _run(ALNUM[:26], 34),
    "github_token": "gh" + "p_" + _run(ALNUM, 36),
    "aws_access_key": "AK" + "IA" + _run(UPPER_DIGITS, 16),
    "slack_token": "xo" + "xb-" + "1234567890123-" + "1234567890123-" + _run(ALNUM, 24),
    "google_api_key": "AI" + "za" + _run(ALNUM + "_-", 35),
    "private_key": "-----BEGIN " + "RSA PRIVATE KEY-----",
    "bearer_token": "Authorization: Bearer " + _run(ALNUM, 40),
    "email": "jane.doe" + "@" + "example.org",
}
MORE_TOKENS = [  # other published shapes of the same kinds
    ("github_token", "github" + "_pat_" + _run(ALNUM, 22) + "_" + _run(ALNUM, 59, start=3)),
    ("github_token", "gh" + "s_" + _run(ALNUM, 36, start=5)),
    ("openai_key", "sk-" + _run(ALNUM, 48, start=2)),
    ("aws_access_key", "AS" + "IA" + _run(UPPER_DIGITS, 16, start=1)),
    ("slack_token", "xa" + "pp-" + "1-A0123456789-1234567890123-" + _run(ALNUM[:26].lower(), 32)),
]


def test_every_kind_is_a_flag_value_with_a_label():
    assert set(TOKENS) == set(KINDS)  # a new kind needs a token in this test


@pytest.mark.parametrize("kind, token", list(TOKENS.items()) + MORE_TOKENS)
def test_each_kind_is_found_in_prose(kind, token):
    assert screen_text(f"The data was fetched with {token} before training.") == [kind]
    assert screen_text(f"({token})") == [kind] and screen_text(f'"{token}",') == [kind]


@pytest.mark.parametrize("text", [
    "We download the weights with hf_hub_download and call hf_model.generate(); hf_token is read from the "
    "environment, and HF_HOME points at the cache.",
    "The baseline is a sk-learn-compatible-estimator-pipeline; task-specific and risk-averse-policy-gradient "
    "variants follow (see sk-learn for details).",
    "Fine-grained tokens start with github_pat_ and classic ones with ghp_; the github_pat_scopes_and_expiry_rules "
    "section of our appendix lists them.",
    "xoxo-and-best-wishes-to-all-reviewers; xoxb- is the prefix of bot tokens.",
    "We thank the AKIA consortium and the AIza group; AKIAPOLIS is a city in our toy dataset.",
    "Bearer of bad news: the model fails on long inputs. Reach us at the address in the paper's header @ICLR.",
    "The commit 3f9a2c1e5b7d4f6a8c0e2b4d6f8a0c2e4b6d8f0a and the hash sha256:9b74c9897bac770ffc029102a200c5de "
    "identify the exact code; arXiv:2309.12307v3 describes LongLoRA.",
])
def test_ordinary_paper_text_is_not_a_finding(text):
    assert screen_text(text) == []


def test_a_key_behind_a_json_escape_is_found_with_its_line(tmp_path):
    token = TOKENS["github_token"]
    path = tmp_path / "chat.jsonl"
    rows = [{"messages": [{"role": "user", "content": "A clean paper."}]},
            {"messages": [{"role": "user", "content": "Setup:\n" + token + "\tand more"}]},  # "...\\nghp_..." in JSON
            {"messages": [{"role": "user", "content": "Mail " + TOKENS["email"] + " and " + TOKENS["openai_key"]}]}]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    findings = screen_file(path)
    assert findings == [(2, "github_token"), (3, "openai_key"), (3, "email")]
    shown = listed(findings) + describe(findings, path)
    assert "line 2: GitHub token (github_token)" in shown and "lines 2, 3" in shown
    assert token not in shown and "jane.doe" not in shown and TOKENS["openai_key"][:12] not in shown


def test_a_unicode_escaped_token_is_found(tmp_path):
    token = TOKENS["huggingface_token"]
    path = tmp_path / "chat.jsonl"
    escaped = "".join(f"\\u{ord(c):04x}" for c in token[:3]) + token[3:]  # "\u0068\u0066\u005f..." in the file
    path.write_text('{"messages": [{"role": "user", "content": "token ' + escaped + '"}]}\n')
    assert token not in path.read_text() and screen_file(path) == [(1, "huggingface_token")]


def test_the_listing_is_capped_on_one_line():
    findings = [(n, "email") for n in range(1, 25)]
    text = listed(findings)
    assert "\n" not in text and text.endswith("; and 14 more") and "line 10: e-mail address (email)" in text


def test_the_upload_help_lists_every_kind():
    from lightning_review.openai_ft.commands import upload

    help_text = " ".join(upload.__doc__.split())
    assert all(kind in help_text for kind in KINDS)
