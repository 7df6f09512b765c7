"""Review points without a judge model (the offline judge's extraction step; the chat judge asks the model instead).

``split_points``: numbered or bulleted items when the review has them, sentences otherwise.

``criticism_points``: only what a review asks of or holds against the paper, never its summary or praise, because a
judge that matches summaries rewards restating the paper (Liang et al. compare the reviews' concerns and criticisms).
The rule, in order:

1. Review sections by their headings. Everything under a summary heading ("Summary", "Paper summary", "Overview",
   "Contributions"; its first paragraph) or a strengths heading ("Strengths", "Pros", "Positives") is left out; everything under a
   criticism heading ("Weaknesses", "Cons", "Concerns", "Questions", "Suggestions", "Minor comments", "Detailed
   comments", "Typos", ...) is kept. A heading of both, "Strengths and weaknesses", is judged as in 2.
2. Elsewhere (no heading, or another one such as "Clarity" or "Review"), an item or sentence is kept when it speaks
   the language of criticism: a question, a request or suggestion ("should", "it would be", "please", "I suggest"),
   a stated lack ("missing", "lacks", "unclear", "not convincing", "limited", "weak"), or a contrast ("however",
   "but", "although", "unfortunately"). Items bulleted with "+" are strengths and left out.
3. Restatement of the paper is left out by the judge that has the paper (embedding_judge: a point whose best match
   in the paper's own text is close to a paraphrase), since a copied sentence can carry criticism words too.
"""

from __future__ import annotations

import re

ITEM = re.compile(r"^\s*(?:(?:[-*+\u2022]|\(?\d{1,2}[.)]|\(?[a-z][.)])\s+|[-+](?=[A-Z]))", re.MULTILINE)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'])")
MIN_CHARS = 25  # shorter fragments ("Minor:", "Typos.") are headings or noise, not points

SUMMARY, STRENGTHS, CRITICISM, OTHER = "summary", "strengths", "criticism", "other"
HEADINGS = {
    SUMMARY: r"(paper |brief )?summary( of the (paper|submission|contributions?))?|overview|synopsis|"
             r"(main )?contributions?|what (the|this) paper (does|proposes)",
    STRENGTHS: r"(the |main |key )?(strengths?|pros|positives?|strong points?|positive (aspects|points)|merits|"
               r"advantages)",
    CRITICISM: r"(the |main |key |major |minor |other |additional |specific |detailed )*(weakness(es)?|cons|"
               r"negatives?|weak points?|concerns?|issues?|limitations?|questions?( (for|to) the authors)?|"
               r"suggestions?( for improvement)?|comments?( follow)?|points?|remarks?|typos?|requests?|"
               r"requested changes|criticisms?)",
}
HEADING_LINE = re.compile(r"^\s*[#*_>]*\s*(?P<title>[A-Za-z][A-Za-z ()'/&-]{0,60}?)\s*[*_]*\s*(?::|\s*$)\s*"
                          r"(?P<rest>.*)$")
CRITICISM_LANGUAGE = re.compile(
    r"\?|\b(should|shouldn't|must|needs? to|need|would (be|like|have|help|benefit|strengthen|improve|make)|"
    r"could (be|have|also)|it'?d be|please|i suggest|suggest(ion)?s?|recommend|encourage|consider(ing)?|"
    r"clarify|justify|elaborate|explain why|(will|would) be (more |very |much )?(interesting|nice|good|better|helpful|"
    r"useful|great|appreciated)|of (great )?interest to|"
    r"lacks?|lacking|missing|miss(es)?|absent|omits?|unclear|not (clear|convinc\w*|sure|obvious|enough|sufficient|"
    r"sufficiently|well|justified|explained|discussed|compared|evaluated|novel|new|surprising|properly|fully)|"
    r"(don't|do not|didn't|did not|can't|cannot) (think|see|understand|find|follow|believe|tell)|"
    r"unconvinc\w*|insufficient\w*|limited|limitations?|weak(ness|nesses|er|ly)?|concerns?|concerned|problematic|unreliable|unfair|biased|unstated|unjustified|unsupported|"
    r"flaw\w*|incorrect|wrong|errors?|mistakes?|typos?|confus\w*|doubts?|doubtful|skeptic\w*|questionable|"
    r"overclaim\w*|overstat\w*|fails?|failed|poor(ly)?|hard to|difficult to|marginal\w*|modest|incremental|"
    r"trivial|puzzl\w*|caveats?|drawbacks?|shortcomings?|inconsistent|ambiguous|vague|misleading|"
    r"however|but|although|though|unfortunately|nevertheless|on the other hand|that being said|"
    r"i wonder|wonder(ing)? (if|whether|why|how))\b", re.IGNORECASE)


def split_points(review: str) -> list[str]:
    """The review's points, in order, each stripped; items if there are at least two, sentences otherwise."""
    return [point for _, point in _split(review)]


def _split(text: str) -> list[tuple[str, str]]:
    """(bullet, point) pairs: the bullet is "+" for an item so marked, "" otherwise."""
    text = text.strip()
    starts = [m.start() for m in ITEM.finditer(text)]
    if len(starts) >= 2:
        head = text[:starts[0]]
        pieces = ([("", head)] if head.strip() else []) + [
            (ITEM.match(text, a).group().strip(), ITEM.sub("", text[a:b], count=1))
            for a, b in zip(starts, starts[1:] + [len(text)])]
        pieces = [(bullet, s) for bullet, piece in pieces
                  for s in ([piece] if bullet else _sentences(piece))]
    else:  # one item at most: sentences, the item's bullet taken off
        pieces = [("", ITEM.sub("", s, count=1)) for s in _sentences(text)]
    points = [(bullet, " ".join(p.split())) for bullet, p in pieces]
    return [(bullet, p) for bullet, p in points if len(p) >= MIN_CHARS]


def _sentences(text: str) -> list[str]:
    return [s for paragraph in re.split(r"\n\s*\n", text) for s in SENTENCE_END.split(paragraph)]


def heading_kind(title: str) -> str:
    """What a section heading announces: summary, strengths, criticism, or other (judged sentence by sentence)."""
    title = " ".join(title.lower().replace("&", " and ").split()).strip(" .")
    for kind, pattern in HEADINGS.items():
        if re.fullmatch(pattern, title):
            return kind
        if re.fullmatch(rf"({pattern}) and ({HEADINGS[CRITICISM]})", title):
            # "Strengths and weaknesses" (OpenReview's NeurIPS form) holds both: judged sentence by sentence
            return OTHER if kind == STRENGTHS else kind
    return OTHER


def sections(review: str) -> list[tuple[str, str]]:
    """(kind, text) for each section of the review, in order; text before any heading is of kind "other"."""
    result: list[tuple[str, list[str]]] = [(OTHER, [])]
    for line in review.splitlines():
        kind, lines = result[-1]
        if kind == SUMMARY and not line.strip() and "".join(lines).strip():
            result.append((OTHER, []))  # a summary is one paragraph: what follows it is the review again
            continue
        match = HEADING_LINE.match(line)
        if match and len(match.group("title").split()) <= 6:
            kind = heading_kind(match.group("title"))
            ends_like_heading = line.rstrip().endswith(":") or not match.group("rest")
            if kind != OTHER or (ends_like_heading and ":" in line and not match.group("rest")):
                result.append((kind, [match.group("rest")] if match.group("rest") else []))
                continue
        result[-1][1].append(line)
    return [(kind, "\n".join(lines)) for kind, lines in result if "".join(lines).strip()]


def is_criticism(point: str) -> bool:
    """Whether a point outside a criticism section asks something of, or holds something against, the paper."""
    return bool(CRITICISM_LANGUAGE.search(point))


def criticism_points(review: str) -> list[str]:
    """The review's criticisms (weaknesses, concerns, questions, requests, suggestions) by rules 1 and 2 above."""
    points = []
    for kind, text in sections(review):
        if kind in (SUMMARY, STRENGTHS):
            continue
        for bullet, point in _split(text):
            if kind == CRITICISM or (bullet != "+" and is_criticism(point)):
                points.append(point)
    return points
