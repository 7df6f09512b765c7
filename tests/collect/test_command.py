"""collect against a local server that answers openreview-py's requests (not OpenReview itself)."""

from __future__ import annotations

import json

import pytest

from lightning_review.collect.client import CollectError
from lightning_review.collect.command import collect
from lightning_review.data.readers import read_records
from lightning_review.errors import UserError

from .openreview_server import PASSWORD, TOKEN, USERNAME, V1_VENUE, VENUE, OpenReviewServer

FAST = dict(requests_per_second=0, retry_wait_s=0.01, timeout_s=5, progress=False)


def run(server, out, **kwargs):
    return collect(output_file=str(out), venue=VENUE, baseurl=server.url, baseurl_v1=server.url + "/v1",
                   **{**FAST, **kwargs})


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_venue_to_paper_reviews_file_the_project_reads(server, tmp_path):
    out = tmp_path / "pairs.jsonl"
    summary = run(server, out)
    papers = lines(out)
    assert [p["id"] for p in papers] == ["paper1", "paper2", "paper3"]
    first = papers[0]
    assert first["title"] == "Reviewing Papers with Long Contexts" and first["decision"] == "Accept (poster)"
    assert first["paper"].startswith("Reviewing Papers with Long Contexts\n\n## 1 Introduction")
    assert "## References" not in first["paper"] and "Chen, S., Wong" not in first["paper"]
    review = first["reviews"][0]
    assert review["reviewer"] == "Reviewer_aBcD" and review["rating"] == 6 and review["confidence"] == 3
    assert review["text"].startswith("Summary: Paper 1 proposes")
    assert review["text"].index("Strengths:") < review["text"].index("Weaknesses:") < review["text"].index("Questions:")
    assert "Code of conduct" not in review["text"] and "ethics" not in review["text"].lower()
    counts = summary["counts"]
    assert counts["submissions"] == 6 and counts["withdrawn"] == 1 and counts["desk_rejected"] == 1
    assert counts["no_public_reviews"] == 1 and counts["written"] == 3
    assert summary["left_out"]["withdrawn"] == ["paper5"] and summary["api_version"] == 2
    # the project's own reader (prepare, fit, evaluate) takes the file as it is: one record per review
    report = read_records(out)
    assert report.summary()["records"] == 7 and report.summary()["papers"] == 3
    assert {r.paper_id for r in report.records} == {"paper1", "paper2", "paper3"}
    assert report.records[0].rating == 6 and report.records[0].review == review["text"]
    assert (tmp_path / "pairs.jsonl.pdfs" / "paper1.pdf").is_file()


def test_withdrawn_kept_on_request_and_pagination(paper_pdfs, tmp_path):
    from .conftest import venue_notes

    server = OpenReviewServer(venue_notes(), paper_pdfs, page_limit=2)  # three pages of notes
    try:
        summary = run(server, tmp_path / "all.jsonl", keep_withdrawn=True)
    finally:
        server.close()
    assert [p["id"] for p in lines(tmp_path / "all.jsonl")] == ["paper1", "paper2", "paper3", "paper5"]
    assert summary["counts"]["withdrawn"] == 1
    assert sum(r["path"] == "/notes" and "after" in r["query"] for r in server.requests) >= 2


def test_interrupted_run_resumes_to_the_same_file(server, tmp_path):
    whole = tmp_path / "whole.jsonl"
    run(server, whole)
    part = tmp_path / "part.jsonl"
    run(server, part, max_papers=1)
    assert len(lines(part)) == 1
    with part.open("a") as f:
        f.write('{"id": "paper2", "title": "cut by a cra')  # a crash in the middle of a line
    pdfs_before = sum(r["path"] == "/attachment" for r in server.requests)
    summary = run(server, part)
    assert part.read_bytes() == whole.read_bytes()
    assert summary["counts"]["already_in_file"] == 1 and summary["counts"]["cut_line_redone"] == 1
    # paper1's PDF comes from the cache the first run of this file left: only papers 2 and 3 are downloaded
    assert sum(r["path"] == "/attachment" for r in server.requests) - pdfs_before == 2


def test_server_errors_are_retried(server, tmp_path):
    server.fail["/notes"] = [500, 503]
    server.fail["/attachment"] = [502]
    summary = run(server, tmp_path / "out.jsonl")
    assert summary["retries"] == 3 and summary["counts"]["written"] == 3


def test_timeouts_are_retried(server, tmp_path):
    server.hang_s = 1.0
    server.fail["/attachment"] = ["hang"]
    summary = run(server, tmp_path / "out.jsonl", timeout_s=0.3)
    assert summary["retries"] == 1 and summary["counts"]["written"] == 3


def test_a_failing_server_is_reported_and_what_was_written_kept(server, tmp_path):
    out = tmp_path / "out.jsonl"
    run(server, out, max_papers=1)
    server.fail["/attachment"] = [500] * 10
    with pytest.raises(CollectError) as error:
        run(server, out, max_attempts=3)
    message = str(error.value)
    assert "the PDF of paper2" in message and "after 3 attempts" in message and "HTTP 500" in message
    assert "1 papers are in" in message and "run the same command again" in message
    assert [p["id"] for p in lines(out)] == ["paper1"]
    server.fail.clear()
    run(server, out)
    assert [p["id"] for p in lines(out)] == ["paper1", "paper2", "paper3"]


def test_credentials_from_the_environment_are_used_and_never_shown(server, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OPENREVIEW_USERNAME", USERNAME)
    monkeypatch.setenv("OPENREVIEW_PASSWORD", PASSWORD)
    out = tmp_path / "out.jsonl"
    run(server, out, split={"train": 0.5, "test": 0.5})
    login = [r for r in server.requests if r["path"] == "/login"]
    assert len(login) == 1 and json.loads(login[0]["body"])["password"] == PASSWORD
    assert all(r["authorization"] == f"Bearer {TOKEN}" for r in server.requests if r["path"] == "/notes")
    shown = capsys.readouterr()
    written = "".join(p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file())
    for secret in (USERNAME, PASSWORD, TOKEN):
        assert secret not in shown.out + shown.err and secret not in written
    # a wrong password: the server's refusal, without the password or the account
    monkeypatch.setenv("OPENREVIEW_PASSWORD", "wrong-password-123")
    with pytest.raises(CollectError) as error:
        run(server, tmp_path / "other.jsonl")
    assert "refused the login" in str(error.value) and "wrong-password-123" not in str(error.value)
    assert USERNAME not in str(error.value)


def test_a_name_that_does_not_match_lists_the_venue_invitations(server, tmp_path):
    with pytest.raises(CollectError) as error:
        run(server, tmp_path / "out.jsonl", submission_invitation=f"{VENUE}/-/Blind_Submission")
    message = str(error.value)
    assert f"no submissions under {VENUE}/-/Blind_Submission" in message
    assert f"{VENUE}/-/Submission" in message and "--submission_invitation" in message
    assert "Submission1/-/Official_Review" not in message  # per-paper invitations are not listed
    with pytest.raises(CollectError, match="replies' invitations end in: Decision .*Official_Review"):
        run(server, tmp_path / "out2.jsonl", review_name="Review")


def test_api_v1_venue(paper_pdfs, tmp_path):
    sub = f"{V1_VENUE}/-/Blind_Submission"
    reply = {"id": "r1", "invitation": f"{V1_VENUE}/Paper1/-/Official_Review",
             "signatures": [f"{V1_VENUE}/Paper1/AnonReviewer2"],
             "content": {"title": "A careful study", "review": "The paper studies reviewing with long contexts. "
                         "It is well written.", "rating": "8: Accept", "confidence": "4: The reviewer is confident"}}
    decision = {"id": "d1", "invitation": f"{V1_VENUE}/Paper1/-/Decision", "content": {"decision": "Accept (Talk)"}}
    notes = {sub: [{"id": "v1paper", "number": 1, "invitation": sub, "content": {"title": "A v1 paper",
                    "abstract": "An abstract.", "pdf": "/pdf/abc.pdf"}, "details": {"directReplies": [reply, decision]}}],
             f"{V1_VENUE}/-/Withdrawn_Submission": [{"id": "w1", "invitation": f"{V1_VENUE}/-/Withdrawn_Submission",
                                                     "content": {"title": "Gone"}}]}
    server = OpenReviewServer([], {"v1paper": paper_pdfs["paper1"]}, v1_notes=notes)
    try:
        summary = collect(output_file=str(tmp_path / "v1.jsonl"), venue=V1_VENUE, baseurl=server.url,
                          baseurl_v1=server.url + "/v1", **FAST)
    finally:
        server.close()
    (paper,) = lines(tmp_path / "v1.jsonl")
    assert summary["api_version"] == 1 and summary["counts"]["withdrawn"] == 1
    assert paper["decision"] == "Accept (Talk)"
    assert paper["reviews"] == [{"reviewer": "AnonReviewer2", "rating": 8, "confidence": 4,
                                 "text": "The paper studies reviewing with long contexts. It is well written."}]
    assert any(r["path"] == "/v1/pdf" for r in server.requests)


def test_a_collect_that_writes_no_paper_exits_non_zero_saying_why(paper_pdfs, tmp_path):
    """A script chaining collect -> prepare -> fit stops at collect when it found nothing: the command exits 1
    with one line naming the cause and the fix, after the summary."""
    from tests.conftest import run_cli

    from .conftest import venue_notes

    server = OpenReviewServer(venue_notes()[3:], paper_pdfs)  # no public reviews, withdrawn, desk-rejected
    out = tmp_path / "none.jsonl"
    try:
        proc = run_cli("collect", f"--venue={VENUE}", f"--baseurl={server.url}", f"--output_file={out}",
                       "--requests_per_second=0", "--progress=false", cwd=tmp_path, timeout=120)
        assert proc.returncode == 1, proc.stderr[-3000:]
        last = proc.stderr.strip().splitlines()[-1]
        assert last.startswith(f"error: collect wrote no paper to {out}: every paper was left out (")
        assert "no_public_reviews: 1" in last and "withdrawn: 1" in last and "desk_rejected: 1" in last
        assert "--keep_withdrawn true" in last and "OPENREVIEW_USERNAME" in last
        assert "Traceback" not in proc.stderr
        summary = json.loads(proc.stdout)  # the summary still comes, on stdout
        assert summary["papers_in_file"] == 0 and summary["left_out"]["no_public_reviews"] == ["paper4"]
        assert not out.exists()  # no empty file for a next step to take
        run(server, out, keep_withdrawn=True)  # the fix the message names works
        assert [p["id"] for p in lines(out)] == ["paper5"]
    finally:
        server.close()


def test_a_rerun_with_nothing_new_is_no_error_but_a_run_of_nothing_is(server, paper_pdfs, tmp_path):
    out = tmp_path / "out.jsonl"
    run(server, out)
    again = run(server, out)  # everything already there: the file has papers, the chain may go on
    assert again["papers_in_file"] == 3 and again["counts"]["already_in_file"] == 3
    assert "written" not in again["counts"]
    with pytest.raises(UserError, match=r"--max_papers must be a whole number of 1 or more"):
        run(server, tmp_path / "zero.jsonl", max_papers=0)  # refused before the venue is listed (test_settings)
    pdf_dir = tmp_path / "pdfs"
    pdf_dir.mkdir()
    (pdf_dir / "paper1.pdf").write_bytes(paper_pdfs["paper1"])
    reviews = tmp_path / "reviews.jsonl"
    reviews.write_text(json.dumps({"id": "paper1", "reviews": []}) + "\n")
    with pytest.raises(UserError, match=r"every paper was left out \(no_reviews: 1;.*at least one review"):
        collect(output_file=str(tmp_path / "folder.jsonl"), pdf_dir=str(pdf_dir), reviews_file=str(reviews),
                progress=False)


def test_an_interrupted_overwrite_keeps_the_old_file_and_the_next_run_finishes_it(server, paper_pdfs, tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text(json.dumps({"id": "old", "paper": "x", "reviews": [{"text": "an older collect"}]}) + "\n")
    old = out.read_bytes()
    (tmp_path / "out.jsonl.pdfs").mkdir()
    (tmp_path / "out.jsonl.pdfs" / "paper1.pdf").write_bytes(paper_pdfs["paper1"])  # paper1 needs no download
    server.fail["/attachment"] = [500] * 10  # the run stops at paper2's PDF, after paper1
    with pytest.raises(CollectError, match=r"1 papers are in .*out.jsonl.partial; .*out.jsonl stays as it was"):
        run(server, out, overwrite=True, max_attempts=2)
    assert out.read_bytes() == old
    server.fail.clear()
    summary = run(server, out, overwrite=True)
    assert [p["id"] for p in lines(out)] == ["paper1", "paper2", "paper3"]
    assert summary["counts"]["already_in_file"] == 1 and summary["note"].startswith("continued")
    assert not (tmp_path / "out.jsonl.partial").exists()
