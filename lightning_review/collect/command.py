"""``python -m lightning_review collect``: paper-review pairs from an OpenReview venue (``--venue``) or from a folder
of PDFs with a reviews file (``--pdf_dir --reviews_file``), in the project's paper-with-reviews format (every field
on every line, null where the source does not say; lightning_review.collect.output.PAPER_FIELDS is the list):

    {"id", "title", "abstract", "paper", "reviews": [{"reviewer", "text", "rating", "confidence"}], "decision",
     "venue", "status", "keywords", "source", "url"}

one paper a line, appended as each is done (a rerun resumes), then optionally split by paper into
``<stem>.train.jsonl`` etc. (``--split '{"train": 0.8, "validation": 0.1, "test": 0.1}' --seed 0``) and written
again one review a line (``--pairs_file``). Papers
without public reviews, withdrawn and desk-rejected papers (unless ``--keep_withdrawn``), papers without a PDF and
PDFs that cannot be read are left out, counted, and listed in the summary printed at the end. A run that ends with
no paper in the file is an error (exit status 1) saying why and what to change, so that a script chaining collect,
prepare and fit stops there.
"""

from __future__ import annotations

import json
from collections import Counter
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from tqdm import tqdm

from ..artifacts.resumable_jsonl import output_files
from ..errors import UserError, count_problem, finite_number
from ..openai_client import timeout_problem
from ..safe_paths import atomic_writer, refuse_output_over_input
from .folder import read_folder
from .invitations import v1_names, v2_names
from .output import PaperWriter
from .pdf_text import Backend, PdfTextError, pdf_to_text, require_backend
from .split import check_fractions, split_file, write_pairs

if TYPE_CHECKING:
    from .client import Fetcher

# The collect extra's packages (setup.cfg) are imported only when a run needs them (.client, .venue and the PDF
# backend import them), so that ``collect --help`` works on a base install; a run checks them before it writes
# anything, and cli.main answers a missing one with the extra's pip command.
VENUE_PACKAGES = ("openreview", "requests", "tenacity")


def collect(output_file: str, venue: str | None = None, pdf_dir: str | None = None, reviews_file: str | None = None,
            api_version: Literal["auto", "1", "2"] = "auto", baseurl: str = "https://api2.openreview.net",
            baseurl_v1: str = "https://api.openreview.net", submission_invitation: str | None = None,
            review_name: str | None = None, decision_name: str | None = None, keep_withdrawn: bool = False,
            pdf_backend: Backend = "pypdf", keep_references: bool = False, pdf_cache_dir: str | None = None,
            max_papers: int | None = None, requests_per_second: float = 2.0, timeout_s: float = 60.0,
            max_attempts: int = 5, retry_wait_s: float = 2.0, overwrite: bool = False,
            split: dict[str, float] | None = None, seed: int = 0, pairs_file: str | None = None,
            progress: bool = True) -> dict:
    """Collect papers with their reviews into ``output_file`` (JSONL, one paper a line) and print a summary.

    Args:
        output_file: where the papers go; an existing file is resumed (its papers are skipped).
        venue: an OpenReview venue id, e.g. ICLR.cc/2024/Conference (API v2) or ICLR.cc/2020/Conference (v1).
        pdf_dir: instead of a venue, a folder of <id>.pdf files ...
        reviews_file: ... and their reviews (JSONL; see lightning_review/collect/folder.py).
        api_version: auto asks the v2 server for the venue group and uses v2 when it is a v2 venue, else v1.
        baseurl: the API v2 server. baseurl_v1: the API v1 server.
        submission_invitation: the submissions' invitation (default: the venue's own, or <venue>/-/Submission
            (v2), <venue>/-/Blind_Submission (v1)).
        review_name: how review invitations end (default: the venue's own, or Official_Review).
        decision_name: how decision invitations end (default: the venue's own, or Decision).
        keep_withdrawn: also write withdrawn and desk-rejected papers that have public reviews.
        pdf_backend: pypdf (default, BSD) or pymupdf (AGPL, installed separately).
        keep_references: keep the references section in the paper text.
        pdf_cache_dir: where downloaded PDFs are kept (default: <output_file>.pdfs/); a rerun reads them there.
        max_papers: stop after this many papers written in total (a sample of the venue).
        requests_per_second: the most requests sent per second (0: no limit). timeout_s: seconds per request.
        max_attempts, retry_wait_s: each request is tried up to max_attempts times, waiting retry_wait_s, then
            twice that, ... (at most 60 s) between tries on timeouts, connection errors, 429 and 5xx.
        overwrite: start output_file over instead of resuming it; the old file stays until the new one is complete
            (an interrupted overwrite is continued by the same command).
        split: fractions by name, e.g. {"train": 0.8, "validation": 0.1, "test": 0.1}: split by paper at the end.
        seed: the split's seed.
        pairs_file: also write one review a line, ``{"id": "<paper>#<i>", "paper", "review", "title", "rating"}``
            (the ``jsonl`` format: for tools that read one pair a line, e.g. ``openai export`` today).
        progress: show a progress bar.
    """
    if (venue is None) == (pdf_dir is None):
        raise UserError("give either --venue (OpenReview) or --pdf_dir with --reviews_file (local PDFs)")
    if pdf_dir is not None and reviews_file is None:
        raise UserError("--pdf_dir needs --reviews_file (JSONL: the reviews of each <id>.pdf)")
    if problems := setting_problems(max_papers, requests_per_second, timeout_s, max_attempts, retry_wait_s):
        raise UserError("; ".join(problems))
    for output in output_files(output_file):  # the file, its lock and the partial file of --overwrite
        refuse_output_over_input(output, [reviews_file], "--output_file")
    refuse_output_over_input(pairs_file, [output_file, reviews_file], "--pairs_file")
    if split:
        check_fractions(split)
    require_packages(venue is not None, pdf_backend)
    counts: Counter = Counter()
    left_out: dict[str, list[str]] = {}
    with PaperWriter(output_file, overwrite=overwrite) as writer:
        counts["already_in_file"] = len(writer.done)
        if writer.repaired:
            counts["cut_line_redone"] = 1
        if venue is not None:
            from .client import CollectError

            try:
                info = _collect_venue(writer, venue, counts, left_out, api_version, baseurl, baseurl_v1,
                                      submission_invitation, review_name, decision_name, keep_withdrawn, pdf_backend,
                                      keep_references, pdf_cache_dir, max_papers, requests_per_second, timeout_s,
                                      max_attempts, retry_wait_s, progress)
            except CollectError as exc:
                kept = f"; {output_file} stays as it was until the overwrite completes" if overwrite else ""
                raise CollectError(f"{exc}. {len(writer.done)} papers are in {writer.path}{kept}; run the same "
                                   "command again to resume from there") from None
        else:
            info = _collect_folder(writer, pdf_dir, reviews_file, counts, left_out, pdf_backend, keep_references,
                                   max_papers, progress)
        summary = {"output_file": output_file, "papers_in_file": len(writer.done), **info,
                   "counts": dict(counts), "left_out": {k: v[:50] for k, v in left_out.items()}}
        if writer.duplicates:  # lines of an id written before: the file was concatenated or edited
            summary["duplicate_id_lines"] = writer.duplicates[:50]
        note = writer.partial_note()
        if note:
            summary["note"] = note
        if not writer.done:  # before finish(): an overwrite that found nothing leaves the old file as it was
            print(json.dumps(summary, indent=2))
            raise UserError(_nothing_written(output_file, left_out, venue or reviews_file))
        writer.finish()
    if split:
        summary["split"] = split_file(output_file, split, seed)
    if pairs_file:
        summary["pairs_file"] = {"file": pairs_file, "pairs": write_pairs(output_file, pairs_file)}
    print(json.dumps(summary, indent=2))
    return summary


def require_packages(from_venue: bool, pdf_backend: Backend) -> None:
    """Import the packages this run needs (OpenReview's client and its retries for a venue, the PDF backend), before
    anything is written: a missing one raises ModuleNotFoundError naming it (cli.main: the collect extra's pip
    command), or the PDF backend's own UserError, not an error halfway through, after the output file was begun."""
    for name in VENUE_PACKAGES if from_venue else ():
        import_module(name)
    require_backend(pdf_backend)


def setting_problems(max_papers, requests_per_second, timeout_s, max_attempts, retry_wait_s) -> list[str]:
    """Why collect's numeric settings cannot run, each naming its flag (none: they can). Checked before any request:
    --timeout_s 0 fails inside the HTTP library, --max_attempts 0 still tries once, --max_papers 0 would list the
    whole venue and then write nothing, a negative --requests_per_second or --retry_wait_s would silently mean
    no limit or no wait, and NaN would be no number at all."""
    problems = []
    if max_papers is not None and (problem := count_problem(
            "--max_papers", max_papers, 1, "papers in the output file at most, e.g. 100; leave it out for all")):
        problems.append(problem)
    if not finite_number(requests_per_second) or requests_per_second < 0:
        problems.append("--requests_per_second must be a number of 0 or more (the most requests sent a second, "
                        f"e.g. 2; 0 for no limit), got {requests_per_second!r}")
    if problem := timeout_problem(timeout_s, example=60):
        problems.append(problem)
    if problem := count_problem("--max_attempts", max_attempts, 1, "tries of each request, e.g. 5"):
        problems.append(problem)
    if not finite_number(retry_wait_s) or retry_wait_s < 0:
        problems.append("--retry_wait_s must be a number of seconds of 0 or more (the wait before a request's "
                        f"second try, doubled for each next one up to 60 s, e.g. 2), got {retry_wait_s!r}")
    return problems


# why papers were left out -> what would let them in: the error of a collect that wrote no paper
LEFT_OUT_FIX = {
    "withdrawn": "--keep_withdrawn true keeps withdrawn and desk-rejected papers that have public reviews",
    "desk_rejected": "--keep_withdrawn true keeps withdrawn and desk-rejected papers that have public reviews",
    "no_public_reviews": "the venue's reviews are not public (yet): take a venue whose reviews are released, or sign "
                         "in as an account that may read them (OPENREVIEW_USERNAME, OPENREVIEW_PASSWORD)",
    "no_pdf": "a paper is collected with its PDF: on OpenReview, or <id>.pdf in --pdf_dir for each id of "
              "--reviews_file",
    "unreadable_pdf": "no text could be read from the PDFs: check the files, or try --pdf_backend pymupdf "
                      "(pip install -e \".[collect-pymupdf]\", AGPL-3.0)",
    "no_reviews": "each paper of --reviews_file needs at least one review with its text",
    "pdfs_without_reviews": "--reviews_file has no reviews under these PDFs' names: its ids must be the PDF names "
                            "without .pdf",
}


def _nothing_written(output_file: str, left_out: dict[str, list[str]], source: str) -> str:
    """Why a run ended with no paper in the file, and what to change: a chained prepare or fit would go on with
    nothing."""
    if not left_out:
        return f"collect wrote no paper to {output_file}: {source} has no papers; give one that has"
    causes = ", ".join(f"{reason}: {len(ids)}" for reason, ids in left_out.items())
    fixes = [fix for fix in dict.fromkeys(LEFT_OUT_FIX.get(reason) for reason in left_out) if fix]
    return (f"collect wrote no paper to {output_file}: every paper was left out ({causes}; the summary above lists "
            f"them). To collect them: {'; '.join(fixes)}")


def _paper_text(data: bytes, name: str, backend: Backend, keep_references: bool, paper_id: str,
                counts: Counter, left_out: dict) -> str | None:
    try:
        return pdf_to_text(data, name, backend=backend, keep_references=keep_references)
    except PdfTextError:
        counts["unreadable_pdf"] += 1
        left_out.setdefault("unreadable_pdf", []).append(paper_id)
        return None


def _collect_venue(writer: PaperWriter, venue: str, counts: Counter, left_out: dict, api_version: str, baseurl: str,
                   baseurl_v1: str, submission_invitation, review_name, decision_name, keep_withdrawn: bool,
                   pdf_backend: Backend, keep_references: bool, pdf_cache_dir, max_papers, requests_per_second: float,
                   timeout_s: float, max_attempts: int, retry_wait_s: float, progress: bool) -> dict:
    from .client import make_client
    from .venue import detect_api_version, list_venue, paper_fields

    settings = dict(timeout_s=timeout_s, requests_per_second=requests_per_second, max_attempts=max_attempts,
                    retry_wait_s=retry_wait_s)
    group_content, fetcher = None, None
    if api_version == "auto":
        fetcher = make_client(2, baseurl, **settings)
        version, group_content = detect_api_version(fetcher, venue)
    else:
        version = int(api_version)
    if fetcher is None or version == 1:
        fetcher = make_client(version, baseurl if version == 2 else baseurl_v1, **settings)
    if version == 2 and group_content is None:
        group = fetcher(f"the venue group {venue}", fetcher.client.get_group, venue)
        group_content = getattr(group, "content", None)
    names = (v2_names(venue, group_content) if version == 2 else v1_names(venue)).override(
        submission_invitation, review_name, decision_name)
    listing = list_venue(fetcher, venue, version, names)
    cache = Path(pdf_cache_dir) if pdf_cache_dir else writer.target.with_name(writer.target.name + ".pdfs")
    cache.mkdir(parents=True, exist_ok=True)
    counts["submissions"] = len(listing.submissions)
    counts["withdrawn"] = sum(s.status == "withdrawn" for s in listing.submissions) + listing.withdrawn_elsewhere
    counts["desk_rejected"] = (sum(s.status == "desk_rejected" for s in listing.submissions)
                               + listing.desk_rejected_elsewhere)
    for submission in tqdm(listing.submissions, desc=f"collect {venue}", unit="paper", disable=not progress):
        if max_papers is not None and len(writer.done) >= max_papers:
            break
        if submission.id in writer.done:
            continue
        fields = paper_fields(submission)
        if submission.status != "active" and not keep_withdrawn:
            reason = submission.status  # counted above
        elif not any(r["text"].strip() for r in submission.reviews):
            reason = "no_public_reviews"
        else:
            reason = None if fields["has_pdf"] else "no_pdf"
        if reason:
            if reason not in ("withdrawn", "desk_rejected"):
                counts[reason] += 1
            left_out.setdefault(reason, []).append(submission.id)
            continue
        pdf = _cached_pdf(fetcher, version, submission.id, cache)
        text = _paper_text(pdf, f"{submission.id}.pdf", pdf_backend, keep_references, submission.id, counts, left_out)
        if text is None:
            continue
        writer.write({"id": submission.id, "title": fields["title"], "abstract": fields["abstract"], "paper": text,
                      "reviews": [{k: r[k] for k in ("reviewer", "text", "rating", "confidence")}
                                  for r in submission.reviews if r["text"].strip()],
                      "decision": submission.decision, "venue": fields["venue"], "status": submission.status,
                      "keywords": fields["keywords"], "source": f"openreview {venue}",
                      "url": f"https://openreview.net/forum?id={submission.id}"})
        counts["written"] += 1
    return {"venue": venue, "api_version": version, "submission_invitation": names.submission,
            "review_name": list(names.review), "decision_name": list(names.decision), "retries": fetcher.retries}


def _cached_pdf(fetcher: Fetcher, version: int, note_id: str, cache: Path) -> bytes:
    path = cache / f"{note_id}.pdf"
    if path.is_file() and path.stat().st_size:
        return path.read_bytes()
    if version == 2:
        data = fetcher(f"the PDF of {note_id}", fetcher.client.get_attachment, "pdf", id=note_id)
    else:
        data = fetcher(f"the PDF of {note_id}", fetcher.client.get_pdf, note_id)
    with atomic_writer(path, "wb") as f:
        f.write(data)
    return data


def _collect_folder(writer: PaperWriter, pdf_dir: str, reviews_file: str, counts: Counter, left_out: dict,
                    pdf_backend: Backend, keep_references: bool, max_papers, progress: bool) -> dict:
    papers, unreviewed = read_folder(pdf_dir, reviews_file)
    counts["papers_in_reviews_file"] = len(papers)
    if unreviewed:
        counts["pdfs_without_reviews"] = len(unreviewed)
        left_out["pdfs_without_reviews"] = unreviewed
    for paper in tqdm(papers, desc=f"collect {pdf_dir}", unit="paper", disable=not progress):
        if max_papers is not None and len(writer.done) >= max_papers:
            break
        if paper.id in writer.done:
            continue
        reason = "no_reviews" if not paper.reviews else "no_pdf" if paper.pdf is None else None
        if reason:  # a paper without reviews would be a line the readers refuse ('reviews' must be non-empty)
            counts[reason] += 1
            left_out.setdefault(reason, []).append(paper.id)
            continue
        text = _paper_text(paper.pdf.read_bytes(), str(paper.pdf), pdf_backend, keep_references, paper.id, counts,
                           left_out)
        if text is None:
            continue
        title = paper.title or text.split("\n", 1)[0].strip()
        writer.write({"id": paper.id, "title": title, "abstract": None, "paper": text, "reviews": paper.reviews,
                      "source": f"folder {pdf_dir}"})
        counts["written"] += 1
    return {"pdf_dir": pdf_dir, "reviews_file": reviews_file}
