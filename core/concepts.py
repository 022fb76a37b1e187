"""Concept table: one row per observation variable and per scored vasoactive drug.

In the style of ricu's concept dictionary (SRC-RICU ``inst/extdata/config/concept-dict.json``):
every variable the dashboard ingests is described once, here — its canonical unit, the units
accepted at ingestion with their multiplicative factor to the canonical unit, the plausible
range, the daily aggregate the derivation uses ("worst value of the day", clinical.md 2.8), the
ADLB ``PARAMCD`` of the ADaM export and whether it is a SOFA input. :mod:`core.units` derives
its lookup tables from this module and :mod:`core.derive` its per-variable aggregates.

Conversion factors (clinical.md 5.1): bilirubin 1 mg/dL = 17.1 umol/L, creatinine 1 mg/dL =
88.4 umol/L, PaO2 1 kPa = 7.50062 mmHg, lactate 1 mmol/L = 9.01 mg/dL (SRC-SEP3: 2 mmol/L =
18 mg/dL), FiO2 % x 0.01. Converted values are rounded to :data:`CONVERSION_DECIMALS` decimals
of the canonical unit so that a value printed in SI exactly on a SOFA cut-off lands on the
cut-off (102.6 umol/L bilirubin is 6.0 mg/dL, not 5.999999999999999).

Plausible ranges: SRC-RICU concept-dict ranges, widened for raw charting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Literal

from core.vocab import Organ

# --- conversion factors (clinical.md 5.1) -----------------------------------------------------
#: bilirubin: 1 mg/dL = 17.1 umol/L (MW 584.66 g/mol -> 17.104) [D]
BILIRUBIN_UMOL_L_PER_MG_DL: Final = 17.1
#: creatinine: 1 mg/dL = 88.4 umol/L (MW 113.12 g/mol) [D]
CREATININE_UMOL_L_PER_MG_DL: Final = 88.4
#: PaO2: 1 kPa = 7.50062 mmHg (101.325 kPa = 760 mmHg) [D]
KPA_TO_MMHG: Final = 7.50062
#: lactate: 1 mmol/L = 9.01 mg/dL (MW 90.08 g/mol; Sepsis-3: 2 mmol/L = 18 mg/dL) [D]
LACTATE_MG_DL_PER_MMOL_L: Final = 9.01
#: FiO2 percent -> fraction
FIO2_FRACTION_PER_PCT: Final = 0.01
#: decimals (in the canonical unit) a converted value is rounded to: 1e-6 mg/dL, mmHg, ...
#: is far below any assay's resolution (creatinine 0.01 mg/dL, bilirubin 0.1 mg/dL) and
#: removes binary floating-point error of the conversion, so SI values printed exactly on a
#: cut-off score on the cut-off (clinical.md 5.2 "convert_to_conventional_then_score")
CONVERSION_DECIMALS: Final = 6

#: how the derivation reduces a variable to one value per study day (clinical.md 2.8)
Aggregate = Literal["min", "max", "sum", "pf", "none"]


@dataclass(frozen=True)
class Concept:
    """One ingested variable (observation) or scored vasoactive drug (infusion).

    Attributes
    ----------
    name
        Variable name in the raw long format (``observations.variable`` / ``infusions.drug``).
    label
        Human-readable name.
    unit
        Canonical unit; every value is converted to it once, at ingestion.
    units
        Accepted unit spellings (after :func:`core.units.unit_key`) -> multiplicative factor
        to :attr:`unit`.
    low, high
        Inclusive plausible range in the canonical unit.
    aggregate
        Worst value of a study day as used by :mod:`core.derive`: ``min``, ``max``, ``sum``
        (urine, scaled to 24 h), ``pf`` (PaO2 / FiO2 matched into P/F, the day's worst P/F is
        the one with the highest respiration score) or ``none`` (not aggregated by derive).
    export_code
        ADLB ``PARAMCD`` of the ADaM export (core.io), None if not exported as ADLB.
    sofa_input
        Read by the classic SOFA derivation.
    organ
        SOFA organ the variable scores, None for non-SOFA variables.
    kind
        ``observation`` or ``drug``.
    per_weight_units
        Drugs only: rate units divided by body weight (kg) before the factor (mcg/min).
    biomarker_column
        Column of the wide raw ``biomarkers`` table that holds the variable (ferritin, HLA-DR:
        stored there, not in ``observations``); None for variables of ``observations``.
    """

    name: str
    label: str
    unit: str
    units: Mapping[str, float]
    low: float
    high: float
    aggregate: Aggregate
    export_code: str | None
    sofa_input: bool
    organ: Organ | None
    kind: Literal["observation", "drug"] = "observation"
    per_weight_units: tuple[str, ...] = field(default=())
    biomarker_column: str | None = None

    def __post_init__(self) -> None:
        # freeze the unit table (a frozen dataclass only freezes the attribute, not the dict)
        object.__setattr__(self, "units", MappingProxyType(dict(self.units)))


def _obs(
    name: str,
    label: str,
    unit: str,
    units: dict[str, float],
    low: float,
    high: float,
    aggregate: Aggregate,
    export_code: str | None,
    organ: Organ | None,
    *,
    biomarker_column: str | None = None,
) -> Concept:
    return Concept(
        name,
        label,
        unit,
        units,
        low,
        high,
        aggregate,
        export_code,
        organ is not None,
        organ,
        biomarker_column=biomarker_column,
    )


def _drug(name: str, label: str, high: float) -> Concept:
    return Concept(
        name,
        label,
        "mcg/kg/min",
        {"mcg/kg/min": 1.0},
        0.0,
        high,
        "max",
        None,
        True,
        Organ.CARDIOVASCULAR,
        kind="drug",
        per_weight_units=("mcg/min",),
    )


_PLATELET_UNITS: Final = {
    "10^3/ul": 1.0,
    "k/ul": 1.0,
    "10^9/l": 1.0,
    "g/l": 1.0,
    "x10^3/ul": 1.0,
    "x10^9/l": 1.0,
}

#: observation variables, in the order of the raw-format documentation
OBSERVATIONS: Final = (
    _obs(
        "pao2",
        "PaO2",
        "mmHg",
        {"mmhg": 1.0, "kpa": KPA_TO_MMHG},
        10.0,
        800.0,
        "pf",
        "PAO2",
        Organ.RESPIRATION,
    ),
    _obs(
        "fio2",
        "FiO2",
        "fraction",
        {"fraction": 1.0, "%": FIO2_FRACTION_PER_PCT},
        0.21,
        1.0,
        "pf",
        "FIO2",
        Organ.RESPIRATION,
    ),
    _obs(
        "platelets",
        "Platelets",
        "10^3/uL",
        _PLATELET_UNITS,
        0.0,
        2000.0,
        "min",
        "PLAT",
        Organ.COAGULATION,
    ),
    _obs(
        "bilirubin",
        "Bilirubin",
        "mg/dL",
        {"mg/dl": 1.0, "umol/l": 1.0 / BILIRUBIN_UMOL_L_PER_MG_DL},
        0.0,
        80.0,
        "max",
        "BILI",
        Organ.LIVER,
    ),
    _obs(
        "creatinine",
        "Creatinine",
        "mg/dL",
        {"mg/dl": 1.0, "umol/l": 1.0 / CREATININE_UMOL_L_PER_MG_DL},
        0.0,
        25.0,
        "max",
        "CREAT",
        Organ.RENAL,
    ),
    _obs(
        "map",
        "Mean arterial pressure",
        "mmHg",
        {"mmhg": 1.0},
        0.0,
        250.0,
        "min",
        "MAP",
        Organ.CARDIOVASCULAR,
    ),
    _obs(
        "gcs_total",
        "GCS total",
        "points",
        {"points": 1.0},
        3.0,
        15.0,
        "min",
        "GCS",
        Organ.CNS,
    ),
    _obs(
        "urine_output",
        "Urine output",
        "mL",
        {"ml": 1.0},
        0.0,
        5000.0,
        "sum",
        "UOUT",
        Organ.RENAL,
    ),
    _obs("weight", "Body weight", "kg", {"kg": 1.0}, 20.0, 350.0, "none", "WEIGHT", None),
    _obs(
        "ferritin",
        "Ferritin",
        "ng/mL",
        {"ng/ml": 1.0, "ug/l": 1.0},
        0.0,
        500_000.0,
        "none",
        "FERRITIN",
        None,
        biomarker_column="ferritin_ng_ml",
    ),
    _obs(
        "hla_dr",
        "Monocyte HLA-DR",
        "AB/C",
        {"ab/c": 1.0},
        0.0,
        200_000.0,
        "none",
        "HLADR",
        None,
        biomarker_column="hla_dr_ab_per_cell",
    ),
    _obs(
        "lactate",
        "Lactate",
        "mmol/L",
        {"mmol/l": 1.0, "mg/dl": 1.0 / LACTATE_MG_DL_PER_MMOL_L},
        0.0,
        50.0,
        "none",
        "LACTATE",
        None,
    ),
)

#: the vasoactive drugs scored by SOFA (SRC-VINCENT), in provenance tie-break order;
#: other drugs (vasopressin, phenylephrine, ...) are stored but never scored (clinical.md 2.6)
DRUGS: Final = (
    _drug("norepinephrine", "Norepinephrine", 5.0),
    _drug("epinephrine", "Epinephrine", 5.0),
    _drug("dopamine", "Dopamine", 50.0),
    _drug("dobutamine", "Dobutamine", 50.0),
)

#: every concept by name (observations first, then drugs); read-only
CONCEPTS: Final = MappingProxyType({c.name: c for c in (*OBSERVATIONS, *DRUGS)})


def concept(name: str) -> Concept:
    """The concept of ``name``.

    Raises
    ------
    KeyError
        ``name`` is not a known variable or drug (the message lists the known names).
    """
    try:
        return CONCEPTS[name]
    except KeyError:
        raise KeyError(f"unknown concept {name!r}; known: {', '.join(CONCEPTS)}") from None


#: observation variables read by the SOFA derivation, in table order
SOFA_OBSERVATION_VARIABLES: Final = tuple(c.name for c in OBSERVATIONS if c.sofa_input)
#: scored drug names, in table order
SCORED_DRUGS: Final = tuple(c.name for c in DRUGS if c.sofa_input)
#: variables of the wide raw ``biomarkers`` table -> their column there (ferritin, HLA-DR)
BIOMARKER_COLUMNS: Final = MappingProxyType(
    {c.name: c.biomarker_column for c in OBSERVATIONS if c.biomarker_column is not None}
)
#: ADLB PARAMCD -> observation variable (the ADaM export's parameter codes)
EXPORT_CODES: Final = MappingProxyType(
    {c.export_code: c.name for c in OBSERVATIONS if c.export_code is not None}
)


def aggregate_of(name: str) -> Aggregate:
    """Daily aggregate (``min`` / ``max`` / ``sum`` / ``pf`` / ``none``) of a variable."""
    return concept(name).aggregate
