"""OPENAI_API_KEY that an HTTP header cannot carry (a pasted smart character, a line break) is one line naming the
variable and the fix, never the key, before any call: it failed deep in the HTTP library with an encoding error."""

import json

import pytest

from lightning_review.errors import UserError
from lightning_review.openai_client import check_api_key, require_api_key
from tests.conftest import run_cli, write_jsonl

BAD_KEYS = [("sk-\u00c9CLAIR-secret", "a non-ASCII character at character 4"),
            ("sk-line\nbreak-secret", "a line break at character 8"),
            ("sk-two words-secret", "a space at character 7"),
            ("sk-bell\x07-secret", "a control character at character 8")]


@pytest.mark.parametrize("key, what", BAD_KEYS)
def test_a_key_a_header_cannot_carry_is_refused_naming_the_variable_not_the_key(monkeypatch, key, what):
    monkeypatch.setenv("OPENAI_API_KEY", key)
    with pytest.raises(UserError) as caught:
        require_api_key()
    message = str(caught.value)
    assert message.startswith(f"OPENAI_API_KEY holds {what}, which an HTTP header cannot carry; copy the key again")
    assert "secret" not in message


def test_plain_keys_pass_and_a_trailing_line_break_does_not(monkeypatch):
    for key in ("sk-proj-AbC_123-xyz", "any"):
        check_api_key(key)
    with pytest.raises(UserError, match="a line break at character 7"):
        check_api_key("sk-abc\n")  # the header would carry it: the HTTP library refuses it
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    check_api_key()  # unset: the missing key is require_api_key's error, not this one


def test_evaluate_with_such_a_key_is_one_line_before_anything_is_written(tmp_path):
    human = write_jsonl(tmp_path / "human.jsonl", [{"id": "p0", "review": "The paper is clear."}])
    ours = write_jsonl(tmp_path / "ours.jsonl", [{"id": "p0", "review": "The paper is clear."}])
    out = tmp_path / "runs" / "evaluation"
    proc = run_cli("evaluate", f"--human_file={human}", f"--systems={json.dumps({'ours': str(ours)})}",
                   '--judges=["openai:gpt-4-1106-preview"]', f"--output_dir={out}", cwd=tmp_path,
                   env={"OPENAI_API_KEY": "sk-\u00c9CLAIR-secret", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"})
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1].startswith(
        "error: OPENAI_API_KEY holds a non-ASCII character at character 4"), proc.stderr
    assert "secret" not in proc.stdout + proc.stderr and not (tmp_path / "runs").exists()
