"""A local HTTP server answering the requests openreview-py 2.9 makes to collect a small venue, with JSON in the
shape OpenReview returns (API v2 under ``/``, API v1 under ``/v1``): POST /login, GET /groups?id=, GET /notes?
invitation=&details=&count=&sort=id&limit=&after= (the client's efficient_iterget pagination), GET /invitations?
prefix= (v2) or ?regex= (v1), GET /attachment?id=&name=pdf (v2) and GET /pdf?id= (v1). Real sockets, one thread.

``fail`` makes the next requests of a path fail: ``server.fail["/notes"] = [500, 500]`` answers 500 twice, then
normally; ``"hang"`` sleeps past the client's timeout."""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

VENUE = "ICLR.cc/2024/Conference"
V1_VENUE = "ICLR.cc/2020/Conference"
USERNAME, PASSWORD, TOKEN = "reviewer@example.org", "s3cret-pass-word", "tok-abc123-xyz"


def v2_review(venue: str, number: int, reviewer: str, rating: str, confidence: str, summary: str, strengths: str,
              weaknesses: str) -> dict:
    sub = f"{venue}/Submission{number}"
    return {"id": f"rev{number}{reviewer}", "forum": f"paper{number}", "replyto": f"paper{number}",
            "invitations": [f"{sub}/-/Official_Review", f"{venue}/-/Edit"],
            "signatures": [f"{sub}/Reviewer_{reviewer}"], "readers": ["everyone"],
            "content": {"summary": {"value": summary}, "soundness": {"value": "3 good"},
                        "strengths": {"value": strengths}, "weaknesses": {"value": weaknesses},
                        "questions": {"value": "How does the method behave on papers longer than the context?"},
                        "flag_for_ethics_review": {"value": ["No ethics review needed."]},
                        "rating": {"value": rating}, "confidence": {"value": confidence},
                        "code_of_conduct": {"value": "Yes"}}}


def v2_paper(venue: str, number: int, title: str, status: str = "active", reviews: list | None = None,
             decision: str | None = None) -> dict:
    venueid = {"active": venue, "withdrawn": f"{venue}/Withdrawn_Submission",
               "desk_rejected": f"{venue}/Desk_Rejected_Submission"}[status]
    replies = list(reviews or [])
    if decision:
        replies.append({"id": f"dec{number}", "invitations": [f"{venue}/Submission{number}/-/Decision"],
                        "signatures": [f"{venue}/Program_Chairs"], "content": {"decision": {"value": decision}}})
    return {"id": f"paper{number}", "number": number, "forum": f"paper{number}",
            "invitations": [f"{venue}/-/Submission", f"{venue}/-/Post_Submission"], "domain": venue,
            "signatures": [f"{venue}/Submission{number}/Authors"], "readers": ["everyone"],
            "content": {"title": {"value": title}, "abstract": {"value": f"The abstract of {title.lower()}."},
                        "keywords": {"value": ["peer review", "language models"]},
                        "pdf": {"value": f"/pdf/{number:040x}.pdf"}, "venueid": {"value": venueid},
                        "venue": {"value": "ICLR 2024 poster" if decision else "Submitted to ICLR 2024"}},
            "details": {"replies": replies}}


class OpenReviewServer:
    def __init__(self, notes: list[dict], pdfs: dict[str, bytes], v1_notes: dict[str, list[dict]] | None = None,
                 group_content: dict | None = None, page_limit: int | None = None):
        self.notes, self.pdfs, self.v1_notes = notes, pdfs, v1_notes or {}
        self.group_content = group_content if group_content is not None else {
            "submission_name": {"value": "Submission"}, "review_name": {"value": "Official_Review"},
            "decision_name": {"value": "Decision"},
            "withdrawn_venue_id": {"value": f"{VENUE}/Withdrawn_Submission"},
            "desk_rejected_venue_id": {"value": f"{VENUE}/Desk_Rejected_Submission"}}
        self.page_limit = page_limit  # answer at most this many notes a page (to exercise pagination)
        self.fail: dict[str, list] = {}
        self.requests: list[dict] = []
        self.hang_s = 2.0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server._handle(self, "GET")

            def do_POST(self):
                server._handle(self, "POST")

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # a client that gave up on a hung request (the timeout tests) closed its socket

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def _send(self, handler, status: int, body, content_type: str = "application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _handle(self, handler, method: str):
        url = urlparse(handler.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        self.requests.append({"method": method, "path": url.path, "query": query,
                              "authorization": handler.headers.get("Authorization"), "body": body})
        v1 = url.path.startswith("/v1/")
        path = url.path.removeprefix("/v1")
        failures = self.fail.get(path)
        if failures:
            failure = failures.pop(0)
            if failure == "hang":
                time.sleep(self.hang_s)
                return self._send(handler, 200, {"notes": [], "count": 0})
            return self._send(handler, failure, {"name": "Error", "message": "Internal server error", "status": failure})
        if path == "/login" and method == "POST":
            creds = json.loads(body)
            if creds.get("id") != USERNAME or creds.get("password") != PASSWORD:
                return self._send(handler, 400, {"name": "InvalidCredentials", "message": "Invalid username or password",
                                                 "status": 400})
            return self._send(handler, 200, {"token": TOKEN, "user": {"id": "~Test_Reviewer1",
                                                                      "profile": {"id": "~Test_Reviewer1"}}})
        if path == "/groups":
            if v1 or query.get("id") != VENUE:
                return self._send(handler, 404, {"name": "NotFoundError", "message": f"Group Not Found: {query.get('id')}",
                                                 "status": 404})
            return self._send(handler, 200, {"groups": [{"id": VENUE, "domain": VENUE, "content": self.group_content,
                                                         "members": [], "readers": ["everyone"]}]})
        if path == "/notes":
            notes = self.v1_notes.get(query.get("invitation"), []) if v1 else [
                n for n in self.notes if query.get("invitation") in n["invitations"]]
            notes = sorted(notes, key=lambda n: n["id"])
            if "after" in query:
                notes = [n for n in notes if n["id"] > query["after"]]
            limit = min(int(query.get("limit", 1000)), self.page_limit or 1000)
            page = [dict(n) for n in notes[:limit]]
            if query.get("details") not in ("replies", "directReplies"):
                page = [{k: v for k, v in n.items() if k != "details"} for n in page]
            answer = {"notes": page}
            if v1 or query.get("count") == "true":  # API v1 always counts; v2 when asked
                answer["count"] = len(notes)
            return self._send(handler, 200, answer)
        if path == "/invitations":
            if v1:
                pattern = re.compile(query.get("regex", ".*"))
                ids = sorted({n["invitation"] for ns in self.v1_notes.values() for n in ns} | set(self.v1_notes))
                ids = [i for i in ids if pattern.match(i)]
            else:
                ids = sorted({i for n in self.notes for i in n["invitations"]}
                             | {i for n in self.notes for r in n["details"]["replies"] for i in r["invitations"]})
                ids = [i for i in ids if i.startswith(query.get("prefix", ""))]
            answer = {"invitations": [{"id": i, "readers": ["everyone"]} for i in ids]}
            if v1 or query.get("count") == "true":  # API v1 always counts; v2 when asked
                answer["count"] = len(ids)
            return self._send(handler, 200, answer)
        if (path == "/attachment" and query.get("name") == "pdf") or path == "/pdf":
            pdf = self.pdfs.get(query.get("id"))
            if pdf is None:
                return self._send(handler, 404, {"name": "NotFoundError", "message": "File not found", "status": 404})
            return self._send(handler, 200, pdf, "application/pdf")
        return self._send(handler, 404, {"name": "NotFoundError", "message": f"no route {path}", "status": 404})
