"""Agreement statistics of the fidelity report: Cohen's and Fleiss' kappa, Spearman's rank correlation
(NumPy; plain JSON numbers, None where undefined)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

_EPS = 1e-9


def _clean(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 6)


def cohen_kappa(a: Sequence[Any], b: Sequence[Any]) -> float | None:
    """Cohen's kappa of two raters' labels over the same items; None when undefined."""
    if len(a) != len(b) or not a:
        return None
    cats = sorted(set(a) | set(b), key=str)
    index = {c: i for i, c in enumerate(cats)}
    m = np.zeros((len(cats), len(cats)))
    for x, y in zip(a, b, strict=True):
        m[index[x], index[y]] += 1
    n = m.sum()
    po = np.trace(m) / n
    pe = float((m.sum(0) * m.sum(1)).sum()) / (n * n)
    if abs(1 - pe) < _EPS:
        return 1.0 if abs(po - 1) < _EPS else None
    return (po - pe) / (1 - pe)


def fleiss_kappa(counts: np.ndarray) -> float | None:
    """Fleiss' kappa of an items x categories matrix of rater counts (same number of raters per item)."""
    counts = np.asarray(counts, dtype=float)
    if counts.ndim != 2 or counts.shape[0] == 0:
        return None
    n = counts.sum(1)
    if not np.allclose(n, n[0]) or n[0] < 2:
        return None
    raters = n[0]
    p_j = counts.sum(0) / counts.sum()
    p_i = ((counts * counts).sum(1) - raters) / (raters * (raters - 1))
    p_bar, pe = p_i.mean(), float((p_j * p_j).sum())
    if abs(1 - pe) < _EPS:
        return 1.0 if abs(p_bar - 1) < _EPS else None
    return (p_bar - pe) / (1 - pe)


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(1, len(x) + 1)
    _, inverse = np.unique(x, return_inverse=True)
    sums = np.bincount(inverse, weights=ranks)
    counts = np.bincount(inverse)
    return (sums / counts)[inverse]  # average ranks for ties


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rank correlation (average ranks for ties); None for fewer than 3 points or a constant."""
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(xa) < 3 or len(xa) != len(ya):
        return None
    rx, ry = _ranks(xa), _ranks(ya)
    sx, sy = rx.std(), ry.std()
    if sx < _EPS or sy < _EPS:
        return None
    return float(((rx - rx.mean()) * (ry - ry.mean())).mean() / (sx * sy))
