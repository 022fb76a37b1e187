"""Frozen rule objects: every clinical choice that clinical.md makes configurable.

The application picks one instance of each (in ``settings.py``) and passes it into core as an
argument; core never reads the environment. ``key()`` gives a short stable string that caches
key on, so changing a rule can never serve a result computed under another rule.

Defaults follow clinical.md "Decisions for this project" (SRC-VINCENT, SRC-MIMIC, SRC-RICU,
SRC-AUDIT for the SAP).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Literal


def _key(obj: object) -> str:
    payload = json.dumps(asdict(obj), sort_keys=True, default=str)  # type: ignore[call-overload]
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class SofaRules:
    """SOFA configuration flags (clinical.md section 2.8, defaults first)."""

    rules_version: str = "sofa1996-immunosep-1"
    #: P/F scores 3-4 need support: invasive or non-invasive incl. CPAP (MDCalc, ricu) by default
    respiratory_support: Literal["invasive_or_noninvasive_incl_cpap", "invasive_only"] = (
        "invasive_or_noninvasive_incl_cpap"
    )
    #: count a vasopressor only while continuously infused for at least this long (SRC-RICU vaso60)
    require_vasopressor_60min: bool = True
    vasopressor_min_minutes: float = 60.0
    #: infusion segments less than this apart are merged before the duration check (ricu: 5 min)
    vasopressor_merge_gap_minutes: float = 5.0
    #: GCS under sedation: last GCS before sedation, 15 if unknown (SRC-MIMIC gcs.sql, SRC-RICU)
    gcs_sedated: Literal["pre_sedation_or_15", "raw"] = "pre_sedation_or_15"
    #: missing component: 0 on day 1, LOCF afterwards (SOFA-2 footnote b; SAP LOCF)
    missing_component: Literal["zero_day1_then_locf", "zero", "nan"] = "zero_day1_then_locf"
    #: total = sum of components present (missing counts 0) or missing if any component is missing
    missing_total: Literal["sum_present", "nan_if_any_missing"] = "sum_present"
    si_units_cutoffs: Literal["convert_to_conventional_then_score", "use_printed_si_bands"] = (
        "convert_to_conventional_then_score"
    )
    study_day: Literal["rolling_24h_from_first_dose", "calendar_date"] = (
        "rolling_24h_from_first_dose"
    )
    #: FiO2 charted up to this many hours before a PaO2 is matched to it (SRC-MIMIC bg.sql: 4 h)
    fio2_match_window_hours: float = 4.0
    #: urine output is scaled to 24 h only when at least this many hours were observed (ricu 12 h)
    urine_min_observed_hours: float = 12.0
    max_study_day: int = 28

    def key(self) -> str:
        return f"{self.rules_version}-{_key(self)}"


@dataclass(frozen=True)
class PhenotypeThresholds:
    """Immune classification thresholds (clinical.md 1.3 and 1.6; SRC-JAMA-ABS, SRC-AUDIT)."""

    ferritin_mals_above_ng_ml: float = 4420.0  # MALS if ferritin > 4420 (wins if both)
    hla_dr_sip_below_ab_per_cell: float = 5000.0  # SIP if ferritin <= 4420 and HLA-DR < 5000
    hla_dr_reversal_above_ab_per_cell: float = 8000.0  # SIP reversal (with ferritin < 4420)
    ferritin_reversal_fall_fraction: float = 0.15  # MALS reversal: fall >= 15 % from baseline [U]
    ferritin_near_fraction: float = 0.10  # near-threshold band (assay variability)
    hla_dr_near_fraction: float = 0.15  # inter-laboratory CV 15-25 % (SRC-HLADR)

    def key(self) -> str:
        return _key(self)


@dataclass(frozen=True)
class EndpointRules:
    """SAP primary endpoint (clinical.md 1.5; SRC-AUDIT SAP pp. 66-67)."""

    last_day: int = 9
    day15_last_day: int = 15
    threshold: float = 1.4  # responder if decrease > 1.4
    death_score: int = 24  # SOFA assigned from the day of death (inclusive) onward [U]

    def key(self) -> str:
        return _key(self)
