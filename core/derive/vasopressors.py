"""Vasopressor duration rule: which infusion runs count for SOFA (SRC-RICU ``vaso60``).

SRC-VINCENT: adrenergic agents count when "given for at least 1 h"; segments of one drug less
than ``SofaRules.vasopressor_merge_gap_minutes`` apart are merged first (ricu: 5 min).
"""

from __future__ import annotations

import numpy as np

from core.derive.primitives import merge_intervals
from core.rules import SofaRules
from core.time import NS_PER_MIN


def qualifying_infusions(
    pcode: np.ndarray,
    drug_code: np.ndarray,
    start_ns: np.ndarray,
    stop_ns: np.ndarray,
    *,
    rules: SofaRules = SofaRules(),
) -> tuple[np.ndarray, np.ndarray]:
    """Which infusion segments belong to a run long enough to count (SRC-RICU ``vaso60``).

    Segments of the same patient and drug less than ``rules.vasopressor_merge_gap_minutes``
    apart (or overlapping) are merged into runs; a run counts if it lasts at least
    ``rules.vasopressor_min_minutes`` when ``rules.require_vasopressor_60min`` (SRC-VINCENT
    "for at least 1 h"). Pass only segments with a rate > 0 (a zero rate is not an infusion).

    Returns
    -------
    (qualifies: bool per segment, run_minutes: float per segment)
    """
    gap = round(rules.vasopressor_merge_gap_minutes * NS_PER_MIN)
    group = pcode.astype(np.int64) * 16 + drug_code
    _, r_start, r_stop, member = merge_intervals(group, start_ns, stop_ns, gap_ns=gap)
    minutes = (r_stop - r_start)[member] / NS_PER_MIN if member.size else np.zeros(0)
    if not rules.require_vasopressor_60min:
        return np.ones(pcode.size, dtype=bool), minutes
    return minutes >= rules.vasopressor_min_minutes, minutes


def vasopressor_counts(minutes: object, rules: SofaRules = SofaRules()) -> np.ndarray:
    """Whether an infusion run of ``minutes`` (merged run length) counts for SOFA (bool array).

    The same test :func:`qualifying_infusions` applies after merging segments less than
    ``rules.vasopressor_merge_gap_minutes`` apart; for displays that show a run's length.
    """
    m = np.asarray(minutes, dtype=np.float64)
    if not rules.require_vasopressor_60min:
        return np.ones(m.shape, dtype=bool)
    return m >= rules.vasopressor_min_minutes
