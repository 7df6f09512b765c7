"""Paper-like PDFs made with reportlab for the tests: real sentences, a title across the page, two justified
columns, numbered section headings in bold, a word hyphenated across a line end, a running header and page numbers,
and a references section followed by an appendix."""

from __future__ import annotations

from pathlib import Path

from reportlab.lib.pagesizes import letter
from reportlab.lib.styles import ParagraphStyle
from reportlab.platypus import BaseDocTemplate, Frame, FrameBreak, PageTemplate, Paragraph, Spacer

HEADER = "Under review as a conference paper at ICLR 2024"

SECTIONS = [
    ("1 Introduction", [
        "Peer review decides which research gets published, yet reviewers are scarce and their time is short. "
        "We ask whether a language model that reads the whole paper can write a useful first review.",
        "Long papers exceed the context of most open models, so we extend the context with position inter-<br/>"
        "polation and train with shifted sparse attention, which keeps the memory of training linear in "
        "the length of the document."]),
    ("2 Related Work", [
        "Automatic review generation has been studied with summarisation models and with retrieval of similar "
        "papers. Earlier systems produced generic comments that praised the clarity of the writing and asked "
        "for more experiments, whatever the paper contained."]),
    ("3 Method", [
        "Our model reads the full text of the submission and generates a review in the format of the venue. "
        "The reviews of the training set come from public peer review, joined with the text of each paper "
        "extracted from its portable document format file."]),
    ("4 Experiments", [
        "We compare the generated reviews with human reviews by matching their points with a judge model and "
        "counting the hits of each system on every paper of the held-out venue."]),
    ("5 Conclusion", [
        "A fine-tuned open model reviews papers at a fraction of the cost of a commercial model, and its points "
        "overlap with those of human reviewers more often than a generic review does."]),
]
REFERENCES = [
    "Chen, S., Wong, S., Chen, L., and Tian, Y. Extending context window of large language models via positional "
    "interpolation. arXiv preprint, 2023.",
    "Liang, W., Zhang, Y., Cao, H., et al. Can large language models provide useful feedback on research papers? "
    "A large-scale empirical analysis. arXiv preprint, 2023.",
]
APPENDIX = ("A Additional Results", "The appendix reports the hit rates of every judge at every threshold and the "
            "agreement between the judges on the same pairs of points.")


def _page_decorations(canvas, doc) -> None:
    canvas.saveState()
    canvas.setFont("Times-Roman", 8)
    canvas.drawString(72, letter[1] - 40, HEADER)
    canvas.drawCentredString(letter[0] / 2, 30, str(doc.page))
    canvas.restoreState()


def make_paper_pdf(path: str | Path, title: str = "Reviewing Papers with Long-Context Language Models",
                   repeat: int = 1) -> Path:
    """A two-column paper: the title spans both columns, then the body flows down the left column and on into the
    right one; ``repeat`` copies the body to make longer papers. Returns the path."""
    path = Path(path)
    width, height = letter
    margin, gutter = 54, 18
    column = (width - 2 * margin - gutter) / 2
    title_h = 70
    body_top = height - 60 - title_h
    first = [Frame(margin, body_top, width - 2 * margin, title_h, id="title"),
             Frame(margin, 50, column, body_top - 50, id="left"),
             Frame(margin + column + gutter, 50, column, body_top - 50, id="right")]
    later = [Frame(margin, 50, column, height - 110, id="left2"),
             Frame(margin + column + gutter, 50, column, height - 110, id="right2")]
    doc = BaseDocTemplate(str(path), pagesize=letter, title=title)
    doc.addPageTemplates([PageTemplate("first", first, onPage=_page_decorations, autoNextPageTemplate="later"),
                          PageTemplate("later", later, onPage=_page_decorations)])
    body = ParagraphStyle("body", fontName="Times-Roman", fontSize=10, leading=12, alignment=4)
    heading = ParagraphStyle("heading", fontName="Times-Bold", fontSize=12, leading=15, spaceBefore=6,
                             spaceAfter=3)
    story = [Paragraph(title, ParagraphStyle("title", fontName="Times-Bold", fontSize=17, leading=21,
                                             alignment=1)), FrameBreak()]
    for copy in range(repeat):
        for name, paragraphs in SECTIONS:
            suffix = f" (part {copy + 1})" if repeat > 1 else ""
            story.append(Paragraph(name + suffix, heading))
            story.extend(Paragraph(p, body) for p in paragraphs)
    story.append(Paragraph("References", heading))
    story.extend(Paragraph(r, body) for r in REFERENCES)
    story.append(Paragraph(APPENDIX[0], heading))
    story.append(Paragraph(APPENDIX[1], body))
    story.append(Spacer(1, 4))
    doc.build(story)
    return path
