"""A ChatJudge built from Python checks its address when it is made (openai_client.check_api_address), as
ApiGenerator does: it was built from any address and failed only at its first call (the openai client's retries,
then a message not saying why), and a password in the address was never named as the problem."""

import pytest

from lightning_review.answer_cache import AnswerCache
from lightning_review.errors import UserError
from lightning_review.evaluate.chat_judge import ChatJudge


def build(tmp_path, base_url):
    return ChatJudge("gpt-4-1106-preview", AnswerCache(tmp_path / "judge.sqlite"), base_url=base_url, api_key="k")


def test_an_address_without_a_scheme_is_refused_without_its_password(tmp_path):
    with pytest.raises(UserError) as caught:
        build(tmp_path, "judge:s3cret@127.0.0.1:8000/v1")
    assert str(caught.value) == "--base_url must start with http:// or https:// (got 127.0.0.1:8000/v1)"
    judge = build(tmp_path, "http://judge:s3cret@127.0.0.1:8000/v1")  # with its scheme: built, the password unshown
    assert "s3cret" not in judge.name and judge.endpoint.endswith("127.0.0.1:8000/v1")


@pytest.mark.parametrize("url", ["http://judge:s3/cret@127.0.0.1:8000/v1", "http://ju dge:s3cret@127.0.0.1:8000/v1"])
def test_an_address_that_cannot_be_split_is_refused_without_its_password(tmp_path, url):
    """A '/' in the password, a blank in the user name: where the password ends cannot be told."""
    with pytest.raises(UserError, match=r"^--base_url cannot be read as an address \(not shown") as caught:
        build(tmp_path, url)
    assert "s3" not in str(caught.value)


def test_openai_base_url_is_checked_when_no_address_is_given(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "127.0.0.1:9/v1")
    with pytest.raises(UserError, match=r"^OPENAI_BASE_URL must start with http:// or https:// "
                                        r"\(got 127.0.0.1:9/v1\)$"):
        build(tmp_path, None)

