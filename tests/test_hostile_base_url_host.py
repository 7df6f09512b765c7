"""check_base_url refuses an address that names no host (``http://``, ``http://u:pw@``, ``https://:8000/v1``) before
any call: it passed, and generate waited out the client's retries to fail with 'could not connect to the API at
http://' (a DNS error), not saying that the host is missing."""

import pytest

from lightning_review.errors import UserError
from lightning_review.openai_client import check_base_url
from tests.generation.api_runs import four_papers, generate, last_line

SECRET = "s3cret-pw"


@pytest.mark.parametrize("url", ["http://", f"http://u:{SECRET}@", "https://:8000/v1", f"http://u:{SECRET}@/v1"])
def test_an_address_without_a_host_is_refused_without_its_password(url):
    with pytest.raises(UserError) as refused:
        check_base_url(url)
    assert str(refused.value).startswith("--base_url names no host"), refused.value
    assert SECRET not in str(refused.value)


@pytest.mark.parametrize("url", ["http://localhost:8000/v1", "https://[::1]:8000/v1", f"http://u:{SECRET}@h"])
def test_an_address_with_a_host_passes(url):
    check_base_url(url)


def test_generate_refuses_a_hostless_base_url_before_any_call(tmp_path):
    out = tmp_path / "out" / "reviews.jsonl"
    out.parent.mkdir()
    proc = generate(four_papers(tmp_path), out, "--api_model=gpt-4", f"--base_url=http://u:{SECRET}@",
                    "--max_retries=0")
    assert last_line(proc).startswith("error: --base_url names no host"), proc.stderr[-2000:]
    assert SECRET not in proc.stdout + proc.stderr and not out.exists()
