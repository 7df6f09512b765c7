"""Judging reviews pairwise (after Liang et al. 2023): points, matches, hits, win rates, and the judge's biases."""
