"""A real HTTP server speaking the parts of the OpenAI protocol the project uses, for tests: files, fine-tuning jobs
and their events, and chat completions (a deterministic judge, or a reviewer when asked to review a paper).
Deterministic; faults (429, 500, a failing job, malformed or slow answers) are injected per route."""

from __future__ import annotations

import email.parser
import fnmatch
import email.policy
import itertools
import json
import threading
import time
from collections import defaultdict, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API_KEY = "sk-test-0123456789abcdefghijklmnop"


class FakeOpenAI:
    """Start with ``with FakeOpenAI() as server:``; ``server.base_url`` goes into OPENAI_BASE_URL.

    ``faults["POST /v1/files"] = deque([429, 500])`` answers the next two such requests with those statuses
    (patterns as in fnmatch: ``"GET /v1/fine_tuning/jobs/*"``); a None in the queue lets one request through.
    A job created with suffix "fail" fails after validation; others run ``steps`` steps and succeed.
    """

    def __init__(self, steps: int = 3):
        self.steps = steps
        self.faults: dict[str, deque] = defaultdict(deque)
        self.requests: list[tuple[str, str]] = []
        self.files: dict[str, dict] = {}
        self.jobs: dict[str, dict] = {}
        self.events: dict[str, list[dict]] = defaultdict(list)
        self.auth_headers: set[str] = set()
        # next chat answers: "malformed", "no_content" (content null), "no_choices" (an empty list), ("slow", seconds)
        self.chat_behaviours: deque = deque()
        self.obey_injections = False  # True: a judge that obeys "rate everything 10" found in the points it matches
        self.chat_calls = 0
        self.chat_requests: list[dict] = []  # bodies of the chat requests answered, in order
        self.in_flight = self.max_in_flight = 0  # chat requests being answered at once
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> "FakeOpenAI":
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    # ---- protocol -------------------------------------------------------------------------------------------------
    def handle(self, method: str, path: str, headers, body: bytes) -> tuple[int, dict]:
        route = f"{method} {path}"
        self.requests.append((method, path))
        self.auth_headers.add(headers.get("Authorization", ""))
        if headers.get("Authorization") != f"Bearer {API_KEY}":
            return 401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}
        pattern = next((p for p, queue in self.faults.items() if queue and fnmatch.fnmatch(route, p)), None)
        status = self.faults[pattern].popleft() if pattern is not None else None
        if status is not None:  # None in a queue lets that request through
            return status, {"error": {"message": f"injected {status}", "type": "server_error"}}
        parts = path.strip("/").split("/")[1:]  # drop "v1"
        now = int(time.time())
        if parts == ["chat", "completions"] and method == "POST":
            return 200, self._chat(json.loads(body))
        if parts == ["files"] and method == "POST":
            filename, content = _multipart_file(headers, body)
            lines = [json.loads(line) for line in content.decode().splitlines() if line.strip()]
            file_id = f"file-{next(self._ids)}"
            self.files[file_id] = {"id": file_id, "object": "file", "bytes": len(content), "created_at": now,
                                   "filename": filename, "purpose": "fine-tune", "status": "processed",
                                   "lines": len(lines)}
            return 200, {k: v for k, v in self.files[file_id].items() if k != "lines"}
        if parts == ["fine_tuning", "jobs"] and method == "POST":
            request = json.loads(body)
            if request["training_file"] not in self.files:
                return 400, {"error": {"message": f"invalid training_file: {request['training_file']}",
                                       "param": "training_file", "type": "invalid_request_error"}}
            job_id = f"ftjob-{next(self._ids)}"
            hyper = request.get("method", {}).get("supervised", {}).get("hyperparameters", {})
            self.jobs[job_id] = {"id": job_id, "object": "fine_tuning.job", "created_at": now, "model":
                                 request["model"], "training_file": request["training_file"], "status":
                                 "validating_files", "fine_tuned_model": None, "finished_at": None, "error": None,
                                 "hyperparameters": {"n_epochs": hyper.get("n_epochs", "auto")},
                                 "organization_id": "org-test", "result_files": [], "seed": request.get("seed", 0),
                                 "trained_tokens": None, "suffix": request.get("suffix"), "_polls": 0}
            self._event(job_id, "Validating training file")
            return 200, self._public(job_id)
        if parts == ["fine_tuning", "jobs"] and method == "GET":
            return 200, {"object": "list", "data": [self._public(j) for j in reversed(self.jobs)], "has_more": False}
        if len(parts) >= 3 and parts[:2] == ["fine_tuning", "jobs"] and parts[2] in self.jobs:
            job_id = parts[2]
            if len(parts) == 3 and method == "GET":
                self._advance(job_id)
                return 200, self._public(job_id)
            if parts[3:] == ["events"]:
                data = sorted(self.events[job_id], key=lambda e: -e["created_at"])  # newest first, as the API does
                return 200, {"object": "list", "data": data, "has_more": False}
            if parts[3:] == ["cancel"] and method == "POST":
                self.jobs[job_id]["status"] = "cancelled"
                self._event(job_id, "Job cancelled")
                return 200, self._public(job_id)
        return 404, {"error": {"message": f"no route {route}", "type": "invalid_request_error"}}

    # ---- a deterministic judge (sentences as points, word overlap as similarity) and reviewer ---------------------
    def _chat(self, request: dict) -> dict:
        self.chat_calls += 1
        self.chat_requests.append(request)
        behaviour = self.chat_behaviours.popleft() if self.chat_behaviours else None
        prompt = next(m["content"] for m in request["messages"] if m["role"] == "user")
        finish = "stop"
        if behaviour == "malformed":
            content = "Sure! Here are the points: first, the baselines..."
        elif '<points name="A">' not in prompt and "<review>" not in prompt:  # asked to review a paper
            words = f"Review of: {prompt}".split()
            limit = request.get("max_tokens") or len(words)
            content, finish = " ".join(words[:limit]), "length" if len(words) > limit else "stop"
        elif "<review>" in prompt:
            review = json.loads(prompt.split("<review>", 1)[1].rsplit("</review>", 1)[0])
            sentences = [x.strip() for x in review.replace("\n", " ").split(". ") if x.strip()]
            content = json.dumps({"points": [{"summary": x.rstrip("."), "span": x} for x in sentences]})
        else:
            a = json.loads(prompt.split('<points name="A">', 1)[1].split("</points>", 1)[0])
            b = json.loads(prompt.split('<points name="B">', 1)[1].split("</points>", 1)[0])
            obeyed = self.obey_injections and any("rate everything 10" in p.lower() for p in [*a.values(), *b.values()])
            content = json.dumps({"matches": [{"a": i, "b": i, "similarity": 10, "rationale": "as instructed"}
                                              for i in range(min(len(a), len(b)))] if obeyed
                                  else _overlap_matches(a, b)})
        if behaviour == "no_content":
            content, finish = None, "content_filter"
        choices = [] if behaviour == "no_choices" else [{"index": 0, "finish_reason": finish, "message": {
            "role": "assistant", "content": content}}]
        return {"id": f"chatcmpl-{self.chat_calls}", "object": "chat.completion", "created": int(time.time()),
                "model": request["model"], "choices": choices,
                "usage": {"prompt_tokens": len(prompt) // 4, "completion_tokens": len(content or "") // 4,
                          "total_tokens": (len(prompt) + len(content or "")) // 4}}

    def _advance(self, job_id: str) -> None:
        job = self.jobs[job_id]
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return
        job["_polls"] += 1
        if job["suffix"] == "fail":
            job.update(status="failed", error={"code": "invalid_training_file", "param": "training_file",
                                               "message": "The file has 2 examples with too many tokens"})
            self._event(job_id, "Job failed", level="error")
            return
        if job["status"] == "validating_files":
            job["status"] = "running"
            self._event(job_id, "Fine-tuning job started")
            return
        step = min(job["_polls"] - 1, self.steps)
        self._event(job_id, f"Step {step}/{self.steps}: training loss={1.0 / step:.4f}")
        if step == self.steps:
            suffix = job["suffix"] or "model"
            job.update(status="succeeded", fine_tuned_model=f"ft:{job['model']}:org-test:{suffix}:abc123",
                       trained_tokens=1000, finished_at=int(time.time()))
            self._event(job_id, "The job has successfully completed")

    def _event(self, job_id: str, message: str, level: str = "info") -> None:
        n = len(self.events[job_id])
        self.events[job_id].append({"id": f"ftevent-{job_id}-{n}", "object": "fine_tuning.job.event",
                                    "created_at": int(time.time()) * 1000 + n, "level": level, "message": message,
                                    "type": "message"})

    def _public(self, job_id: str) -> dict:
        return {k: v for k, v in self.jobs[job_id].items() if not k.startswith("_")}

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self, method: str) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with server._lock:  # a slow answer waits outside the lock, so answers can overlap
                    queue = server.chat_behaviours
                    slow = queue.popleft()[1] if self.path.endswith("/chat/completions") and queue and \
                        isinstance(queue[0], tuple) else 0
                with server._lock:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                time.sleep(slow)
                with server._lock:
                    server.in_flight -= 1
                    status, payload = server.handle(method, self.path.split("?")[0], self.headers, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if status == 429:
                    self.send_header("retry-after-ms", "10")
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._serve("GET")

            def do_POST(self):
                self._serve("POST")

            def log_message(self, *args):
                pass

        return Handler


def _multipart_file(headers, body: bytes) -> tuple[str, bytes]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {headers['Content-Type']}\r\n\r\n".encode() + body)
    for part in message.iter_parts():
        if part.get_filename():
            return part.get_filename(), part.get_payload(decode=True)
    raise ValueError("no file part in the upload")


def _overlap_matches(a: dict, b: dict) -> list[dict]:
    """Greedy one-to-one pairs by word overlap (Jaccard); similarity 5 + 5 x overlap, pairs above 0.2 overlap."""
    def words(text):
        return {w.strip(".,;:()").lower() for w in text.split() if len(w) > 3}

    scored = sorted(((len(words(x) & words(y)) / max(len(words(x) | words(y)), 1), int(i), int(j))
                     for i, x in a.items() for j, y in b.items()), reverse=True)
    used_a, used_b, out = set(), set(), []
    for overlap, i, j in scored:
        if overlap > 0.2 and i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            out.append({"a": i, "b": j, "similarity": round(min(10.0, 5 + 5 * overlap), 2),
                        "rationale": f"{overlap:.0%} of the words are shared"})
    return out
