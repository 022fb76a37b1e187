"""Shared pieces of the generator: organ order, time units, rounding and sampling primitives.

Everything here is a pure function of its arguments (the random ones draw from the
``numpy.random.Generator`` they are given, in a fixed order).
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np

from core.vocab import Organ

__all__ = [
    "CARD",
    "CNS",
    "COAG",
    "DAY_S",
    "HOUR_S",
    "LIVER",
    "N_DAYS_MAX",
    "ORGANS",
    "RENAL",
    "RESP",
    "apportion",
    "band",
    "cat",
    "choose",
    "expand",
    "hours",
    "round_half_up",
    "to_datetime",
]

#: organ order of every latent score array (axis 1 of ``(patients, 6, days)``)
ORGANS: Final = (
    Organ.RESPIRATION,
    Organ.COAGULATION,
    Organ.LIVER,
    Organ.CARDIOVASCULAR,
    Organ.CNS,
    Organ.RENAL,
)
RESP, COAG, LIVER, CARD, CNS, RENAL = range(6)
#: study days with latent scores (and at most with ICU charting)
N_DAYS_MAX: Final = 28
DAY_S: Final = 86_400
HOUR_S: Final = 3_600


def round_half_up(x: float) -> int:
    """Round half up (deterministic, no banker's rounding)."""
    return math.floor(x + 0.5)


def apportion(total: int, weights: np.ndarray) -> np.ndarray:
    """Largest-remainder integer split of ``total`` proportional to ``weights``."""
    w = np.asarray(weights, dtype=float)
    q = total * w / w.sum()
    base = np.floor(q).astype(np.int64)
    rem = int(total - base.sum())
    order = np.argsort(-(q - base), kind="stable")
    base[order[:rem]] += 1
    return base


def choose(rng: np.random.Generator, eligible: np.ndarray, k: int, logw: np.ndarray) -> np.ndarray:
    """Weighted sampling without replacement of k among ``eligible`` (Gumbel top-k)."""
    keys = logw + rng.gumbel(size=eligible.size)
    keys = np.where(eligible, keys, -np.inf)
    k = min(k, int(eligible.sum()))
    out = np.zeros(eligible.size, dtype=bool)
    if k > 0:
        out[np.argsort(-keys, kind="stable")[:k]] = True
    return out


def cat(u: np.ndarray, probs: tuple[float, ...]) -> np.ndarray:
    """Category 0..len-1 for uniform u under ``probs`` (inverse CDF)."""
    cum = np.cumsum(probs)[:-1] / np.sum(probs)
    return np.searchsorted(cum, u, side="right").astype(np.int64)


def band(
    rng: np.random.Generator, score: np.ndarray, bands: tuple[tuple[float, float], ...]
) -> np.ndarray:
    """Uniform raw value inside the band of each score."""
    lo = np.asarray([b[0] for b in bands], dtype=float)[score]
    hi = np.asarray([b[1] for b in bands], dtype=float)[score]
    return lo + rng.random(score.size) * (hi - lo)


def expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(owner index, position within owner) for ``counts[i]`` items per owner."""
    counts = np.asarray(counts, dtype=np.int64)
    owner = np.repeat(np.arange(counts.size), counts)
    starts = np.cumsum(counts) - counts
    pos = np.arange(owner.size) - starts[owner]
    return owner, pos


def to_datetime(seconds: np.ndarray) -> np.ndarray:
    """Whole seconds since the epoch (int64) -> ``datetime64[ns]``."""
    return np.asarray(seconds, dtype=np.int64).astype("datetime64[s]").astype("datetime64[ns]")


def hours(x: np.ndarray) -> np.ndarray:
    """Hours (float) -> whole seconds (int64)."""
    return np.rint(np.asarray(x, dtype=float) * HOUR_S).astype(np.int64)
