"""An API's error that echoes the request (as some proxies and servers do: its headers, or an address with the key
in its path) is printed by the command line with the key replaced by ``<OPENAI_API_KEY>``, never the key itself."""

from tests.conftest import run_cli
from tests.openai_server import API_KEY, FakeOpenAI

PLACEHOLDER = "<OPENAI_API_KEY>"


class EchoingServer(FakeOpenAI):
    """Refuses every request (400, which the client does not retry) with a body that echoes the request's
    Authorization header and its path, where the key is when the address carries it."""

    def handle(self, method, path, headers, body):
        self.requests.append((method, path))
        echoed = f"bad request {method} {path} (Authorization: {headers.get('Authorization')})"
        return 400, {"error": {"message": echoed, "type": "invalid_request_error"}}


def run_refused(tmp_path, base_url: str):
    return run_cli("openai", "list", cwd=tmp_path, env={"OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": API_KEY})


def test_an_error_echoing_the_key_in_a_header_is_shown_with_the_placeholder(tmp_path):
    with EchoingServer() as server:
        proc = run_refused(tmp_path, server.base_url)
    assert proc.returncode == 1 and server.requests, proc.stderr
    assert API_KEY not in proc.stdout + proc.stderr
    assert f"Authorization: Bearer {PLACEHOLDER}" in proc.stderr  # the rest of the server's words still shown


def test_an_error_echoing_an_address_with_the_key_in_its_path_is_shown_with_the_placeholder(tmp_path):
    with EchoingServer() as server:
        proc = run_refused(tmp_path, f"{server.base_url}/{API_KEY}")
    assert proc.returncode == 1 and server.requests, proc.stderr
    assert any(API_KEY in path for _, path in server.requests)  # the key did reach the echoed path
    assert API_KEY not in proc.stdout + proc.stderr
    assert f"/v1/{PLACEHOLDER}/fine_tuning/jobs" in proc.stderr
