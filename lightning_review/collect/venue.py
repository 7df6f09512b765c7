"""A venue's submissions with their public reviews and decisions, through openreview-py.

API v2: ``get_all_notes(invitation=<venue>/-/Submission, details="replies")`` gives every submission with its
replies; a reply is a review when one of its invitations ends in the review name, a decision likewise; a paper's
``content.venueid`` says whether it was withdrawn or desk rejected. API v1: the same with ``details=
"directReplies"``; withdrawn and desk-rejected papers are notes of their own invitations, counted from there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .client import CollectError, Fetcher
from .forms import review_record, value
from .invitations import VenueNames, matches, venue_wide


@dataclass
class Submission:
    id: str
    number: int | None
    content: dict
    status: str  # "active", "withdrawn" or "desk_rejected"
    reviews: list[dict] = field(default_factory=list)
    decision: str | None = None


@dataclass
class VenueListing:
    api_version: int
    names: VenueNames
    submissions: list[Submission]
    withdrawn_elsewhere: int = 0  # v1: notes of the withdrawn invitation
    desk_rejected_elsewhere: int = 0
    reply_invitations: dict = field(default_factory=dict)  # ending -> count, for the error when nothing matched


def detect_api_version(v2: Fetcher, venue: str) -> tuple[int, dict | None]:
    """2 with the venue group's content when the v2 server knows the venue as an API v2 venue, else 1."""
    from openreview import OpenReviewException

    try:
        group = v2(f"the venue group {venue}", v2.client.get_group, venue)
    except OpenReviewException:
        return 1, None
    content = getattr(group, "content", None) or {}
    return (2, content) if "submission_name" in content else (1, None)


def list_venue(fetcher: Fetcher, venue: str, api_version: int, names: VenueNames) -> VenueListing:
    """Every submission of the venue with its reviews and decision (the notes are fetched once, paginated by the
    client)."""
    details = "replies" if api_version == 2 else "directReplies"
    notes = fetcher(f"the submissions of {names.submission}", fetcher.client.get_all_notes,
                    invitation=names.submission, details=details)
    if not notes:
        raise CollectError(no_match_message(fetcher, venue, api_version, f"no submissions under {names.submission}",
                                            "--submission_invitation"))
    listing = VenueListing(api_version, names, [])
    for note in sorted(notes, key=lambda n: n.id):
        content = note.content or {}
        status = "active"
        if api_version == 2:
            venueid = value(content.get("venueid"))
            status = ("withdrawn" if venueid == names.withdrawn else
                      "desk_rejected" if venueid == names.desk_rejected else "active")
        submission = Submission(note.id, note.number, content, status)
        for reply in (note.details or {}).get(details) or []:
            invitations = reply.get("invitations") or [reply.get("invitation") or ""]
            for invitation in invitations:
                ending = invitation.rsplit("/", 1)[-1]
                listing.reply_invitations[ending] = listing.reply_invitations.get(ending, 0) + 1
            if any(matches(i, names.review) for i in invitations):
                review = review_record(reply.get("content") or {}, reply.get("signatures"))
                review["id"] = reply.get("id")
                submission.reviews.append(review)
            elif any(matches(i, names.decision) for i in invitations):
                reply_content = reply.get("content") or {}
                submission.decision = value(reply_content.get("decision") or reply_content.get("recommendation"))
        submission.reviews.sort(key=lambda r: (r["reviewer"] or "", r["id"] or ""))
        listing.submissions.append(submission)
    if api_version == 1:
        for name, attr in ((names.withdrawn, "withdrawn_elsewhere"), (names.desk_rejected, "desk_rejected_elsewhere")):
            if name:
                found = fetcher(f"the notes of {name}", fetcher.client.get_all_notes, invitation=name)
                setattr(listing, attr, len(found))
    if listing.reply_invitations and not any(s.reviews for s in listing.submissions):
        seen = ", ".join(f"{k} ({n})" for k, n in sorted(listing.reply_invitations.items()))
        raise CollectError(f"{venue}: no reply of the {len(notes)} submissions is a review named "
                           f"{' or '.join(names.review)}; the replies' invitations end in: {seen}. Give the review's "
                           "name with --review_name")
    return listing


def no_match_message(fetcher: Fetcher, venue: str, api_version: int, problem: str, flag: str) -> str:
    """The error for a name that does not match, with the venue-wide invitations the server lists."""
    client = fetcher.client
    if api_version == 2:
        invitations = fetcher(f"the invitations of {venue}", client.get_all_invitations, prefix=venue)
    else:
        invitations = fetcher(f"the invitations of {venue}", client.get_all_invitations, regex=f"{venue}/.*")
    offered = venue_wide([i.id for i in invitations])
    listed = "; the venue offers: " + ", ".join(offered) if offered else (
        f"; the server lists no invitations under {venue}: is the venue id right (case matters)?")
    return f"{venue} (API v{api_version}): {problem}{listed}. Choose one with {flag}"


def paper_fields(submission: Submission) -> dict:
    """Title, abstract, keywords and venue of a submission's content (v1 or v2)."""
    content = submission.content
    keywords = value(content.get("keywords"))
    return {"title": value(content.get("title")), "abstract": value(content.get("abstract")),
            "keywords": keywords if isinstance(keywords, list) else None, "venue": value(content.get("venue")),
            "has_pdf": bool(value(content.get("pdf")))}
