"""Which invitations hold a venue's submissions, reviews and decisions, and which venue ids mark withdrawn and
desk-rejected papers.

API v2 venues say it themselves: the venue group's content has ``submission_name``, ``review_name``,
``decision_name``, ``withdrawn_venue_id`` and ``desk_rejected_venue_id`` (ICLR 2024, NeurIPS 2023 on, ICML 2023
on, TMLR ...); where a field is missing the usual name is used. API v1 venues (ICLR 2017-2023, NeurIPS 2021-2022)
use ``<venue>/-/Blind_Submission`` and replies ending in ``Official_Review`` and ``Decision``; ICLR 2017 used
lower-case names of its own (in V1_VENUES). Every name can be given on the command line instead.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .forms import value


@dataclass(frozen=True)
class VenueNames:
    """Submission invitation, and the endings of reply invitations that are reviews and decisions."""

    submission: str
    review: tuple[str, ...]
    decision: tuple[str, ...]
    withdrawn: str  # v2: the content.venueid of withdrawn papers; v1: the invitation of withdrawn submissions
    desk_rejected: str

    def override(self, submission: str | None = None, review: str | None = None,
                 decision: str | None = None) -> "VenueNames":
        return replace(self, submission=submission or self.submission,
                       review=(review,) if review else self.review, decision=(decision,) if decision else self.decision)


V1_VENUES = {
    "ICLR.cc/2017/conference": VenueNames("ICLR.cc/2017/conference/-/submission", ("official/review",),
                                          ("acceptance",), "", ""),
    "ICLR.cc/2018/Conference": VenueNames("ICLR.cc/2018/Conference/-/Blind_Submission", ("Official_Review",),
                                          ("Acceptance_Decision",), "ICLR.cc/2018/Conference/-/Withdrawn_Submission",
                                          ""),
}


def v2_names(venue: str, group_content: dict | None) -> VenueNames:
    content = {k: value(v) for k, v in (group_content or {}).items()}
    submission = content.get("submission_name") or "Submission"
    return VenueNames(submission=f"{venue}/-/{submission}",
                      review=(content.get("review_name") or "Official_Review",),
                      decision=(content.get("decision_name") or "Decision",),
                      withdrawn=content.get("withdrawn_venue_id") or f"{venue}/Withdrawn_Submission",
                      desk_rejected=content.get("desk_rejected_venue_id") or f"{venue}/Desk_Rejected_Submission")


def v1_names(venue: str) -> VenueNames:
    return V1_VENUES.get(venue) or VenueNames(
        submission=f"{venue}/-/Blind_Submission", review=("Official_Review",), decision=("Decision",),
        withdrawn=f"{venue}/-/Withdrawn_Submission", desk_rejected=f"{venue}/-/Desk_Rejected_Submission")


def matches(invitation: str, endings: tuple[str, ...]) -> bool:
    return any(invitation.endswith("/" + e) or invitation.endswith("-/" + e) for e in endings)


def venue_wide(invitation_ids: list[str], limit: int = 40) -> list[str]:
    """The venue-wide invitations among ``invitation_ids`` (not the per-paper copies), for an error message."""
    import re

    wide = sorted({i for i in invitation_ids if not re.search(r"/(Paper|Submission|paper)\d+/", i)})
    return wide[:limit] + ([f"... {len(wide) - limit} more"] if len(wide) > limit else [])
