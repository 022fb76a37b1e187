"""Source vocabularies -> raw variables, as data: one mapping table per coding system.

``core/io/mappings/<system>.csv`` (``clif``, ``loinc``, ``fhir``, ``sdtm``) maps a code of that
system (a CLIF ``*_category``, a LOINC code, a FHIR medication / procedure / device code, an
SDTM ``--TESTCD``) to a raw-format target, in the
style of ricu's concept dictionary (SRC-RICU): nothing is hard-coded per call. Columns:

``code``
    The code as the source writes it (matched case-insensitively, surrounding blanks ignored).
``target``
    Raw table it lands in: ``observations`` (``variable`` is an observation concept of
    :mod:`core.concepts`), ``biomarkers`` (ferritin, HLA-DR), ``infusions`` (``variable`` is a
    drug), ``episodes`` (``variable`` is an :class:`core.vocab.EpisodeKind`) or ``ignore``
    (known to the system, deliberately not imported; ``label`` says why).
``variable``
    Concept, drug or episode kind.
``unit``
    Unit assumed when a source record carries none (e.g. CLIF ``vital_category`` ``map`` is
    mmHg by definition); empty when the record must carry its unit. Every unit is converted by
    the one conversion of :mod:`core.units` (exact at the SOFA cut-offs).
``label``
    Human-readable name of the code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Final

import pandas as pd

from core.concepts import CONCEPTS, DRUGS, OBSERVATIONS
from core.vocab import EPISODE_KINDS

MAPPINGS_DIR: Final = Path(__file__).resolve().parent / "mappings"
#: the coding systems with a mapping table
SYSTEMS: Final = ("clif", "fhir", "loinc", "sdtm")
TARGETS: Final = ("observations", "biomarkers", "infusions", "episodes", "ignore")


@dataclass(frozen=True)
class CodeMapping:
    """One row of a mapping table (see the module docstring)."""

    system: str
    code: str
    target: str
    variable: str
    unit: str | None
    label: str


def _valid_variables(target: str) -> tuple[str, ...]:
    if target in ("observations", "biomarkers"):
        return tuple(
            c.name
            for c in OBSERVATIONS
            if (c.biomarker_column is not None) == (target == "biomarkers")
        )
    if target == "infusions":
        return tuple(d.name for d in DRUGS)
    if target == "episodes":
        return EPISODE_KINDS
    return ()


def code_table(system: str) -> Mapping[str, CodeMapping]:
    """The mapping table of ``system``: normalised code -> :class:`CodeMapping`.

    Raises
    ------
    ValueError
        Unknown system, or a table row naming an unknown target or variable (a packaging
        error, caught by the tests).
    """
    if system not in SYSTEMS:
        raise ValueError(f"unknown coding system {system!r}; known: {', '.join(SYSTEMS)}")
    frame = pd.read_csv(MAPPINGS_DIR / f"{system}.csv", dtype=str, keep_default_na=False)
    out: dict[str, CodeMapping] = {}
    for i, row in enumerate(frame.itertuples(index=False), start=1):
        target = row.target.strip()
        variable = row.variable.strip()
        if target not in TARGETS:
            raise ValueError(f"{system}.csv row {i}: target {target!r} not in {TARGETS}")
        if target != "ignore" and variable not in _valid_variables(target):
            raise ValueError(
                f"{system}.csv row {i}: {variable!r} is not a {target} variable; "
                f"known: {', '.join(_valid_variables(target))}"
            )
        key = normalise_code(row.code)
        if key in out:
            raise ValueError(f"{system}.csv row {i}: code {row.code!r} listed twice")
        out[key] = CodeMapping(
            system, row.code.strip(), target, variable, row.unit.strip() or None, row.label
        )
    return MappingProxyType(out)


def normalise_code(code: object) -> str:
    """The lookup form of a source code: text, blanks stripped, case folded."""
    return str(code).strip().casefold()


def concept_unit(variable: str) -> str:
    """Canonical unit of an observation or drug concept (for documentation tables)."""
    return CONCEPTS[variable].unit
