"""The long formats as data: column types and value rules, natural keys, event times.

:data:`TABLE_SPECS` is read by validation (types, vocabularies, ranges, natural keys, event
times), by the importer (natural keys and the columns compared with stored rows) and by
:func:`~core.io.load.content_hash`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Literal

from core.concepts import BIOMARKER_COLUMNS, CONCEPTS
from core.rules import EndpointRules, SofaRules
from core.vocab import EPISODE_KINDS, Arm, Phenotype

#: default SOFA rules (frozen, so a safe default argument)
DEFAULT_SOFA_RULES: Final = SofaRules()
DEFAULT_ENDPOINT_RULES: Final = EndpointRules()

Kind = Literal["str", "float", "datetime", "bool"]


@dataclass(frozen=True)
class ColumnSpec:
    """Type and value rules of one column of a long-format table."""

    kind: Kind
    required: bool = True  # the column must be present in the file
    nullable: bool = False  # an empty cell is allowed
    isin: tuple[str, ...] | None = None
    low: float | None = None
    high: float | None = None
    unit: str = ""

    def expected(self) -> str:
        """Human description of a valid value."""
        base = {
            "str": "a text value",
            "float": "a finite number",
            "datetime": "an ISO 8601 date-time (UTC), e.g. 2024-03-01 14:30",
            "bool": "true/false (or 1/0, yes/no)",
        }[self.kind]
        if self.isin is not None:
            base = "one of " + ", ".join(repr(v) for v in self.isin)
        if self.low is not None or self.high is not None:
            base += f" in {self.low:g}-{self.high:g} {self.unit}".rstrip()
        return base


@dataclass(frozen=True)
class TableSpec:
    """Columns, natural key and time columns of a long-format table (docs/architecture.md)."""

    columns: Mapping[str, ColumnSpec]
    key: tuple[str, ...]
    #: event times that must fall after birth and not after death
    event_times: tuple[str, ...] = ()
    #: columns compared when a row with the same natural key is already stored
    compare: tuple[str, ...] = ()


def _c(kind: Kind, **kw: Any) -> ColumnSpec:
    return ColumnSpec(kind, **kw)


_OPT = {"required": False, "nullable": True}


def _in_range(name: str, **kw: Any) -> ColumnSpec:
    """A float column whose range and unit are those of the concept ``name``."""
    c = CONCEPTS[name]
    return ColumnSpec("float", low=c.low, high=c.high, unit=c.unit, **kw)


#: the long-format tables accepted by the importer, in foreign-key order
TABLE_SPECS: Final[Mapping[str, TableSpec]] = MappingProxyType(
    {
        "sites": TableSpec(
            {"site_id": _c("str"), "name": _c("str", **_OPT), "country": _c("str", **_OPT)},
            key=("site_id",),
        ),
        "patients": TableSpec(
            {
                "patient_id": _c("str"),
                "site_id": _c("str"),
                "anchor_time": _c("datetime"),
                "weight_kg": _in_range("weight"),
                "death_time": _c("datetime", **_OPT),
                "age_years": _c("float", low=0.0, high=120.0, unit="years", **_OPT),
                "sex": _c("str", isin=("F", "M"), **_OPT),
                "apache_ii": _c("float", low=0.0, high=71.0, unit="points", **_OPT),
                "charlson": _c("float", low=0.0, high=37.0, unit="points", **_OPT),
                "infection_type": _c("str", **_OPT),
                "mechanical_ventilation": _c("bool", **_OPT),
                "randomised_at": _c("datetime", **_OPT),
            },
            key=("patient_id",),
            compare=("site_id", "anchor_time", "weight_kg", "death_time", "age_years", "sex"),
        ),
        # one row per ICU stay (admission to discharge); stop empty = still in the ICU.
        # validate.py adds: stop >= start, a patient's stays never overlap (file and store)
        "icu_stays": TableSpec(
            {
                "patient_id": _c("str"),
                "unit": _c("str"),
                "bed": _c("str", **_OPT),
                "start": _c("datetime"),
                "stop": _c("datetime", nullable=True),
            },
            key=("patient_id", "start"),
            event_times=("start", "stop"),
            compare=("unit", "bed", "stop"),
        ),
        "randomisation": TableSpec(
            {
                "patient_id": _c("str"),
                "arm": _c("str", isin=tuple(a.value for a in Arm)),
                "randomised_at": _c("datetime", **_OPT),
            },
            key=("patient_id",),
            event_times=("randomised_at",),
            compare=("arm",),
        ),
        "observations": TableSpec(
            {
                "patient_id": _c("str"),
                "time": _c("datetime"),
                "variable": _c("str"),
                "value": _c("float"),
                "unit": _c("str"),
                "source": _c("str", **_OPT),
            },
            key=("patient_id", "time", "variable"),
            event_times=("time",),
            compare=("value",),
        ),
        "infusions": TableSpec(
            {
                "patient_id": _c("str"),
                "drug": _c("str"),
                "start": _c("datetime"),
                "stop": _c("datetime"),
                "rate": _c("float"),
                "unit": _c("str"),
            },
            key=("patient_id", "start", "drug"),
            event_times=("start",),
            compare=("stop", "rate"),
        ),
        "episodes": TableSpec(
            {
                "patient_id": _c("str"),
                "kind": _c("str", isin=EPISODE_KINDS),
                "start": _c("datetime"),
                "stop": _c("datetime", nullable=True),
            },
            key=("patient_id", "start", "kind"),
            event_times=("start",),
            compare=("stop",),
        ),
        "biomarkers": TableSpec(
            {
                "patient_id": _c("str"),
                "time": _c("datetime"),
                **{col: _in_range(name, nullable=True) for name, col in BIOMARKER_COLUMNS.items()},
            },
            key=("patient_id", "time"),
            event_times=("time",),
            compare=tuple(BIOMARKER_COLUMNS.values()),
        ),
        "doses": TableSpec(
            {
                "patient_id": _c("str"),
                "time": _c("datetime"),
                "route": _c("str", isin=("IV", "SC")),
                # blinding: the product is never stored, only the neutral label
                "label": _c("str", isin=("study drug",)),
            },
            key=("patient_id", "time", "route"),
            event_times=("time",),
            compare=("label",),
        ),
        "adverse_events": TableSpec(
            {
                "patient_id": _c("str"),
                "onset_time": _c("datetime"),
                "soc": _c("str"),
                "pt": _c("str"),
                "serious": _c("bool"),
                "severe": _c("bool"),
                "related": _c("bool"),
                "aesi": _c("str", isin=("anemia", "hemorrhage"), **_OPT),
            },
            key=("patient_id", "onset_time", "pt"),
            event_times=("onset_time",),
            compare=("soc", "serious", "severe", "related"),
        ),
        "disposition": TableSpec(
            {
                "screening_id": _c("str"),
                "site_id": _c("str"),
                "patient_id": _c("str", nullable=True),
                "excluded_reason": _c("str", **_OPT),
                "phenotype_at_screening": _c("str", isin=tuple(p.value for p in Phenotype), **_OPT),
                "withdrawn_with_data_removal": _c("bool"),
            },
            key=("screening_id",),
            compare=("site_id", "patient_id"),
        ),
    }
)
