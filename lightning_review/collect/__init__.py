"""Collect paper-review pairs: an OpenReview venue (openreview-py, API v2 or v1) or a local folder of PDFs with a
reviews file, written in the project's paper-with-reviews format (one paper a line; ``prepare``, ``fit``, ``openai
export`` and ``evaluate`` read it as it is). Modules: client (openreview-py access, credentials, retries, rate
limit), invitations (venue defaults), forms (a review form as one text), venue (submissions, reviews, decisions),
pdf_text (PDF to text), folder (local PDFs), output (resumable JSONL), split (train/validation/test by paper),
command (``python -m lightning_review collect``)."""
