"""A paper's PDF as the text a model reads: two columns in reading order, section headings kept as ``## heading``
lines (the form of the project's PeerRead sample), running headers, footers and page numbers removed, words
hyphenated across line ends joined, the references section left out (an appendix after it is kept).

Two backends, one layout step:
  pypdf    (default, BSD-3-Clause) ``extract_text(extraction_mode="layout")`` places every text run at its x
           position in a fixed-width grid; runs of spaces split a row into pieces, which are then assigned to the
           left column, the right column or both (a title, a wide figure caption) by their extent.
  pymupdf  (optional, AGPL-3.0: the opt-in extra ``collect-pymupdf``; never a dependency of this Apache-2.0
           project)
           the lines of ``page.get_text("dict")`` with their boxes, font sizes and bold flags.

Measured on this machine (2 cores, 1 thread), on PDFs made with reportlab in the layout of tests/collect/pdfs.py
(title across the page, two justified columns, running header, page numbers, references then an appendix) from
the real text of 4 PeerRead papers (5-10 pages each), and on two real single-column manuals from /usr/share/doc:
  - reading order: both backends found all 113 checked paragraph openings, in order (the one
    exception in the count is a phrase that occurs twice in its paper); all 60 section headings
    (numbered, several wrapped onto two rows) kept as ``## heading``; header, page numbers and references gone;
  - speed: pypdf 37-78 ms a page on the papers and 80-86 on the manuals (36 and 17 pages); pymupdf 14-26 ms a
    page on the papers (after its first import) and 8-12 on the manuals;
  - headings without a number: pymupdf knows font sizes and finds them (83 in libtasn1.pdf), pypdf only those of
    a known name (30).
Hyphen joining and the removal of a one-page PDF's header and page number are tested on tests/collect/pdfs.py.
pypdf is the default because its licence fits the project and its text is as good here; pymupdf is 3-9x faster,
which matters little next to downloading at the rate limit of OpenReview.
"""

from __future__ import annotations

import io
import re
import statistics
from collections import Counter
from dataclasses import dataclass
from typing import Literal

from ..errors import UserError

Backend = Literal["pypdf", "pymupdf"]

NUMBERED_HEADING = re.compile(r"^(?:\d+(?:\.\d+)*\.?|[A-Z](?:\.\d+)*\.?|[IVX]+\.)\s+[A-Z][^.!?]{0,90}$")
NAMED_HEADING = re.compile(r"^(?:abstract|introduction|related work|background|method(?:s|ology)?|experiments?|"
                           r"results|discussion|conclusions?|limitations|acknowledge?ments?|references|bibliography|"
                           r"appendix|appendices|supplementary material)\s*$", re.I)
REFERENCES = re.compile(r"^(?:\d+\.?\s+|[IVX]+\.\s+)?(?:references|bibliography|literature cited)\s*$", re.I)
APPENDIX = re.compile(r"^(?:appendix|appendices|supplementary|[A-Z](?:\.\d+)*\.?\s+[A-Z])", re.I)
# running headers that ML venues' templates print on every page (found even in a one-page PDF)
VENUE_HEADER = re.compile(r"^(?:under review as a conference paper at|published as a conference paper at|"
                          r"under review as a workshop paper|preprint\. under review|arxiv:\d{4}\.\d{4,5})", re.I)
PAGE_NUMBER = re.compile(r"^(?:page\s+)?\d{1,4}(?:\s*(?:/|of)\s*\d{1,4})?$|^[ivxlc]{1,6}$", re.I)


class PdfTextError(UserError):
    """A PDF that cannot be read (not a PDF, encrypted, no text layer): the message names the file."""


@dataclass
class Piece:
    """A piece of a text row: where it is on the page (``top`` grows downwards) and how it is set."""

    top: float
    x0: float
    x1: float
    text: str
    size: float | None = None
    bold: bool = False


def pdf_to_text(data: bytes, name: str = "<pdf>", backend: Backend = "pypdf", keep_references: bool = False) -> str:
    """The paper text of a PDF's bytes (see the module docstring for what is kept and removed)."""
    pages = _pypdf_pages(data, name) if backend == "pypdf" else _pymupdf_pages(data, name)
    pages = _drop_running_lines(pages)
    blocks: list[tuple[str, str]] = []  # ("heading" | "para", text)
    for page, width in pages:
        blocks.extend(_page_blocks(_reading_order(page, width)))
    blocks = _merge_across_pages(blocks)
    if not keep_references:
        blocks = _drop_references(blocks)
    if blocks and blocks[0][0] == "heading" and not NUMBERED_HEADING.match(blocks[0][1]):
        blocks[0] = ("para", blocks[0][1])  # the title, set large: the first line, as in the PeerRead sample
    text = "\n\n".join(f"## {t}" if kind == "heading" else t for kind, t in blocks).strip()
    if not text:
        raise PdfTextError(f"{name}: no text layer (a scanned PDF?); run OCR on it first or leave the paper out")
    return text


def _pypdf_pages(data: bytes, name: str) -> list[tuple[list[Piece], float]]:
    import pypdf
    from pypdf.errors import PdfReadError

    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise PdfTextError(f"{name}: the PDF is encrypted; decrypt it first")
        pages = []
        for page in reader.pages:
            rows = page.extract_text(extraction_mode="layout", layout_mode_space_vertically=True).split("\n")
            pieces = []
            for row, line in enumerate(rows):
                for match in re.finditer(r"\S+(?: {1,2}\S+)*", line):
                    pieces.append(Piece(float(row), float(match.start()), float(match.end()), match.group()))
            pages.append((pieces, float(max((len(r) for r in rows), default=1))))
        return pages
    except PdfReadError as exc:
        raise PdfTextError(f"{name}: not a readable PDF ({exc})") from None


def require_backend(backend: Backend) -> None:
    """Import ``backend``'s package, before a run begins: pypdf's ModuleNotFoundError as it is (it comes with the
    collect extra, which cli.main names), PyMuPDF's as a UserError (a separate, AGPL-3.0 extra)."""
    if backend == "pypdf":
        import pypdf  # noqa: F401
    else:
        _import_pymupdf()


def _import_pymupdf():
    try:
        import pymupdf
    except ImportError:
        raise UserError("pdf_backend=pymupdf needs PyMuPDF (AGPL-3.0, not installed with this project): "
                        "pip install -e \".[collect-pymupdf]\" from the project's directory, or use the default "
                        "pdf_backend=pypdf") from None
    return pymupdf


def _pymupdf_pages(data: bytes, name: str) -> list[tuple[list[Piece], float]]:
    pymupdf = _import_pymupdf()
    try:
        document = pymupdf.open(stream=data, filetype="pdf")
    except Exception as exc:  # pymupdf raises its own FileDataError / RuntimeError for broken files
        raise PdfTextError(f"{name}: not a readable PDF ({exc})") from None
    if document.needs_pass:
        raise PdfTextError(f"{name}: the PDF is encrypted; decrypt it first")
    pages = []
    for page in document:
        pieces = []
        for block in page.get_text("dict")["blocks"]:
            for line in block.get("lines", []):
                spans = [s for s in line["spans"] if s["text"].strip()]
                if not spans:
                    continue
                x0, y0, x1, _ = line["bbox"]
                main = max(spans, key=lambda s: len(s["text"]))
                text = "".join(s["text"] for s in line["spans"]).strip()
                pieces.append(Piece(y0, x0, x1, re.sub(r"\s+", " ", text), main["size"], bool(main["flags"] & 16)))
        pages.append((pieces, page.rect.width))
    return pages


def _norm(text: str) -> str:
    return re.sub(r"\d+", "#", text.strip().lower())


def _drop_running_lines(pages: list[tuple[list[Piece], float]]) -> list[tuple[list[Piece], float]]:
    """Leave out page numbers and the lines repeated in the top or bottom band of most pages (running headers)."""
    def band(pieces: list[Piece]) -> list[Piece]:
        tops = sorted({p.top for p in pieces})
        edge = set(tops[:2] + tops[-2:])
        return [p for p in pieces if p.top in edge]

    seen = Counter()
    for pieces, _ in pages:
        seen.update({_norm(p.text) for p in band(pieces)})
    repeated = {text for text, n in seen.items() if len(pages) >= 2 and n >= max(2, len(pages) / 2)}
    out = []
    for pieces, width in pages:
        edge = {id(p) for p in band(pieces)}
        out.append(([p for p in pieces if not (id(p) in edge and (_norm(p.text) in repeated
                                                                   or PAGE_NUMBER.match(p.text.strip())
                                                                   or VENUE_HEADER.match(p.text.strip())))], width))
    return out


def _reading_order(pieces: list[Piece], width: float) -> list[list[Piece]]:
    """Rows of pieces in reading order: on a two-column page, between two full-width rows, the left column's rows
    and then the right column's."""
    if not pieces:
        return []
    left_edge = min(p.x0 for p in pieces)
    right_edge = max(p.x1 for p in pieces)
    mid = (left_edge + right_edge) / 2
    slack = 0.03 * (right_edge - left_edge)

    def side(p: Piece) -> str:
        if p.x1 <= mid + slack:
            return "left"
        if p.x0 >= mid - slack:
            return "right"
        return "span"

    sides = [side(p) for p in pieces]
    right_rows = {p.top for p, s in zip(pieces, sides) if s == "right"}
    span_rows = {p.top for p, s in zip(pieces, sides) if s == "span"}
    all_rows = {p.top for p in pieces}
    two_columns = len(right_rows) >= max(3, 0.25 * len(all_rows)) and len(span_rows) < 0.5 * len(all_rows)
    if not two_columns:
        sides = ["span"] * len(pieces)
    ordered: list[list[Piece]] = []
    segment: dict[str, dict[float, list[Piece]]] = {"left": {}, "right": {}}

    def flush():
        for column in ("left", "right"):
            for top in sorted(segment[column]):
                ordered.append(sorted(segment[column][top], key=lambda p: p.x0))
            segment[column] = {}

    rows: dict[float, list[tuple[Piece, str]]] = {}
    for p, s in zip(pieces, sides):
        rows.setdefault(p.top, []).append((p, s))
    for top in sorted(rows):
        if any(s == "span" for _, s in rows[top]):
            flush()
            ordered.append(sorted((p for p, _ in rows[top]), key=lambda p: p.x0))
        else:
            for p, s in rows[top]:
                segment[s].setdefault(top, []).append(p)
    flush()
    return ordered


def _is_heading(row: list[Piece], text: str, body_size: float | None, after_break: bool, short: bool) -> bool:
    """A heading by its font (larger or bold, where the backend knows fonts), or by its form: a section name, or a
    numbered title on a row of its own (after a paragraph's end, or a short row)."""
    if len(text) > 100 or len(text.split()) > 12 or text.endswith((",", ";")):
        return False
    sizes = [p.size for p in row if p.size]
    if sizes and body_size and (max(sizes) > 1.1 * body_size or all(p.bold for p in row)) and not text.endswith("."):
        return True
    if NAMED_HEADING.match(text):
        return after_break or short
    return bool(NUMBERED_HEADING.match(text)) and (after_break or short)


def _page_blocks(rows: list[list[Piece]]) -> list[tuple[str, str]]:
    """Headings and paragraphs of a page's rows in reading order: a paragraph ends at a blank row, a heading, or
    a short row ending a sentence; a word hyphenated at a row's end is joined to the rest on the next row."""
    sizes = [p.size for row in rows for p in row if p.size]
    body_size = statistics.median(sizes) if sizes else None
    widths = [row[-1].x1 - row[0].x0 for row in rows]
    full = statistics.quantiles(widths, n=10)[-1] if len(widths) >= 2 else (widths[0] if widths else 0)
    blocks: list[tuple[str, str]] = []
    paragraph = ""
    previous_top = None
    after_break = True
    break_gap = 1.9 * _line_step(rows)  # a gap this tall between rows ends a paragraph

    def end_paragraph():
        nonlocal paragraph
        if paragraph.strip():
            blocks.append(("para", paragraph.strip()))
        paragraph = ""

    for row in rows:
        text = " ".join(p.text for p in row).strip()
        if previous_top is not None and row[0].top - previous_top > break_gap and paragraph:
            end_paragraph()
            after_break = True
        previous_top = row[0].top
        width = row[-1].x1 - row[0].x0
        heading = _is_heading(row, text, body_size, after_break or not paragraph, width < 0.6 * full)
        if blocks and blocks[-1][0] == "heading" and not paragraph and (heading or text.isupper()) and not (
                NUMBERED_HEADING.match(text) or NAMED_HEADING.match(text)) and len(text) < 60:
            blocks[-1] = ("heading", f"{blocks[-1][1]} {text}")  # a heading wrapped onto a second row
            continue
        if heading:
            end_paragraph()
            blocks.append(("heading", text))
            after_break = True
            continue
        paragraph = _join(paragraph, text)
        after_break = False
        if text.endswith((".", "?", "!", ":")) and width < 0.8 * full:
            end_paragraph()
            after_break = True
    end_paragraph()
    return blocks


def _line_step(rows: list[list[Piece]]) -> float:
    steps = [b[0].top - a[0].top for a, b in zip(rows, rows[1:]) if b[0].top > a[0].top]
    return statistics.median(steps) if steps else 1.0


def _join(paragraph: str, text: str) -> str:
    if not paragraph:
        return text
    if re.search(r"[a-z]-$", paragraph) and re.match(r"[a-z]", text):
        return paragraph[:-1] + text  # "compu-" + "tation"
    return paragraph + " " + text


def _merge_across_pages(blocks: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """A paragraph cut by a column or page end continues in the next block when it did not end a sentence."""
    merged: list[tuple[str, str]] = []
    for kind, text in blocks:
        if (merged and kind == "para" and merged[-1][0] == "para" and not merged[-1][1].endswith((".", "?", "!", ":"))
                and re.match(r"[a-z(]", text)):
            merged[-1] = ("para", _join(merged[-1][1], text))
        else:
            merged.append((kind, text))
    return merged


def _drop_references(blocks: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Without the references section: from its heading (the last one) up to an appendix heading or the end."""
    starts = [i for i, (kind, text) in enumerate(blocks) if kind == "heading" and REFERENCES.match(text)]
    if not starts:
        return blocks
    start = starts[-1]
    end = next((i for i in range(start + 1, len(blocks))
                if blocks[i][0] == "heading" and APPENDIX.match(blocks[i][1])), len(blocks))
    return blocks[:start] + blocks[end:]
