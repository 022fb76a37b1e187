"""Shared vocabulary of core and UI: organs, phenotypes, arms, column names.

One place for names, so ``core`` and ``components`` never spell a column twice
(teal's shared argument convention; see docs/conventions.md section 5).
"""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType
from typing import Final


class Organ(StrEnum):
    """The six SOFA organ systems (SRC-VINCENT)."""

    RESPIRATION = "respiration"
    COAGULATION = "coagulation"
    LIVER = "liver"
    CARDIOVASCULAR = "cardiovascular"
    CNS = "cns"
    RENAL = "renal"


ORGANS: Final = tuple(Organ)
#: component score column per organ, e.g. ``sofa_renal``
SOFA_COLUMNS: Final = MappingProxyType({o: f"sofa_{o.value}" for o in Organ})
SOFA_TOTAL: Final = "sofa_total"
#: short organ name for tight displays (ward board headers, "what changed" texts)
ORGAN_SHORT: Final = MappingProxyType(
    {
        Organ.RESPIRATION: "Resp",
        Organ.COAGULATION: "Coag",
        Organ.LIVER: "Liver",
        Organ.CARDIOVASCULAR: "CV",
        Organ.CNS: "CNS",
        Organ.RENAL: "Renal",
    }
)

#: score_sofa input columns (one row = one patient-day, worst value of the day)
SOFA_INPUT_COLUMNS: Final = (
    "pao2_fio2_mmhg",
    "respiratory_support",
    "platelets_10e3_per_ul",
    "bilirubin_mg_dl",
    "map_mmhg",
    "dopamine_mcg_kg_min",
    "dobutamine_mcg_kg_min",
    "epinephrine_mcg_kg_min",
    "norepinephrine_mcg_kg_min",
    "gcs_total",
    "creatinine_mg_dl",
    "urine_output_ml_24h",
)


class Phenotype(StrEnum):
    """Immune classification (SRC-JAMA-ABS, SRC-CTGOV; clinical.md section 1.3)."""

    MALS = "MALS"
    SIP = "SIP"
    NOT_ELIGIBLE = "not_eligible"
    PENDING = "pending_hla_dr"
    UNKNOWN = "unknown"


class Arm(StrEnum):
    """Randomised arm. Server-side only for blinded roles (docs/blinding.md section 6)."""

    PRECISION = "precision"
    PLACEBO = "placebo"


ARM_LABELS: Final = MappingProxyType(
    {Arm.PRECISION: "Precision immunotherapy", Arm.PLACEBO: "Placebo"}
)
#: the active product a precision-arm patient receives, by phenotype (clinical.md 1.4)
ACTIVE_PRODUCT: Final = MappingProxyType(
    {Phenotype.MALS: "anakinra", Phenotype.SIP: "interferon-gamma"}
)


class EpisodeKind(StrEnum):
    """Kinds of the raw ``episodes`` table (docs/architecture.md "Raw long format")."""

    INVASIVE_VENTILATION = "invasive_ventilation"
    NONINVASIVE_VENTILATION = "noninvasive_ventilation"
    CPAP = "cpap"
    OXYGEN = "oxygen"  # oxygen only: never respiratory support for SOFA
    SEDATION = "sedation"
    RRT = "rrt"


#: every episode kind, in declaration order (the importer's accepted values)
EPISODE_KINDS: Final = tuple(k.value for k in EpisodeKind)
#: episode kinds counted as respiratory support, per ``SofaRules.respiratory_support``
#: (clinical.md "Decisions": invasive or non-invasive incl. CPAP by default; MIMIC: invasive only)
RESPIRATORY_SUPPORT_KINDS: Final = MappingProxyType(
    {
        "invasive_or_noninvasive_incl_cpap": (
            EpisodeKind.INVASIVE_VENTILATION.value,
            EpisodeKind.NONINVASIVE_VENTILATION.value,
            EpisodeKind.CPAP.value,
        ),
        "invasive_only": (EpisodeKind.INVASIVE_VENTILATION.value,),
    }
)

#: the raw tables of the long format (docs/architecture.md), parents before children
RAW_TABLES: Final = (
    "sites",
    "patients",
    "icu_stays",
    "randomisation",
    "observations",
    "infusions",
    "episodes",
    "biomarkers",
    "doses",
    "adverse_events",
    "disposition",
)
