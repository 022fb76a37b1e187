"""FHIR R4 Bundles (JSON) -> raw long-format tables (docs/formats.md "FHIR R4").

Every Bundle (``type`` transaction, batch or collection) and every resource in it is parsed
and validated with the FHIR model library ``fhir.resources`` (its R4B models, identical to R4
for the resources read here); a resource the library rejects is a :class:`Problem` naming the
file, the entry (``row``, 1-based index in ``Bundle.entry``), the resource and the library's
message. The resources are then mapped to the tables of :data:`core.io.schema.TABLE_SPECS`:

- ``Patient`` -> ``patients`` (``anchor_time`` = start of the patient's first ICU stay,
  ``weight_kg`` = first body weight Observation, LOINC 29463-7, ``site_id`` = the
  ``managingOrganization``'s id, else :data:`DEFAULT_SITE`);
- ``Encounter.location[]`` with a ``period`` -> ``icu_stays`` (one row per location period);
- ``Observation`` (status final, amended, corrected) -> ``observations`` or ``biomarkers``,
  coded by ``core/io/mappings/loinc.csv`` (LOINC) and ``fhir.csv`` (local codes, e.g. HLA-DR);
- ``MedicationAdministration`` -> ``infusions`` (``fhir.csv``: RxNorm, ATC, text);
- ``Procedure`` / ``DeviceUseStatement`` (via its ``Device.type``) -> ``episodes`` (SNOMED CT).

Units are passed on as the source writes them (UCUM ``valueQuantity.code``, else ``.unit``):
conversion happens once, at validation (:mod:`core.units`). A code that no mapping table
knows is a problem, unless the table lists it as ``ignore``; resources that are deliberately
not imported (other resource types, statuses such as ``preliminary``) are counted by reason in
:attr:`FhirTables.skipped`.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import pandas as pd
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError

from core.concepts import BIOMARKER_COLUMNS, CONCEPTS
from core.exceptions import DataValidationError, Problem
from core.io.codes import CodeMapping, code_table, normalise_code
from core.io.schema import TABLE_SPECS
from core.units import unit_key

#: Bundle types accepted (a transaction is imported all or nothing like every import)
BUNDLE_TYPES: Final = ("transaction", "batch", "collection")
#: site of a Patient without ``managingOrganization``
DEFAULT_SITE: Final = "FHIR"
LOINC_SYSTEM: Final = "http://loinc.org"
#: the project's local code system (codes of ``fhir.csv`` prefixed ``local:``, e.g. HLA-DR)
LOCAL_SYSTEM: Final = "urn:immunosep:local"
#: code system URI -> prefix of its codes in ``core/io/mappings/fhir.csv``
SYSTEM_PREFIXES: Final = MappingProxyType(
    {
        "http://snomed.info/sct": "snomed",
        "http://www.nlm.nih.gov/research/umls/rxnorm": "rxnorm",
        "http://www.whocc.no/atc": "atc",
        LOCAL_SYSTEM: "local",
    }
)
BODY_WEIGHT_LOINC: Final = "29463-7"
OBSERVATION_STATUSES: Final = ("final", "amended", "corrected")
PROCEDURE_STATUSES: Final = ("completed", "in-progress")
DEVICE_USE_STATUSES: Final = ("active", "completed")
ADMINISTRATION_STATUSES: Final = ("completed", "in-progress", "stopped")
#: resource types read as such; Medication, Device, Organization and Location are read when
#: referenced; every other type is skipped (counted)
IMPORTED_TYPES: Final = (
    "Patient",
    "Encounter",
    "Observation",
    "MedicationAdministration",
    "Procedure",
    "DeviceUseStatement",
)
REFERENCED_TYPES: Final = ("Medication", "Device", "Organization", "Location")
_REFERENCE = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]*)?$")


@dataclass(frozen=True)
class FhirTables:
    """Outcome of :func:`parse_fhir`: raw tables, problems and skipped resources by reason."""

    tables: Mapping[str, pd.DataFrame]
    problems: tuple[Problem, ...]
    skipped: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Entry:
    """One validated resource: where it came from, its model and its identity."""

    file: str
    row: int  # 1-based index in Bundle.entry
    full_url: str | None
    resource: Any

    @property
    def rtype(self) -> str:
        return str(self.resource.get_resource_type())

    @property
    def label(self) -> str:
        return f"{self.rtype}/{self.resource.id or self.full_url or '?'}"


def read_fhir(paths: Sequence[Path]) -> dict[str, pd.DataFrame]:
    """Raw tables from FHIR R4 Bundle files (JSON); see the module docstring.

    Raises
    ------
    DataValidationError
        Every problem of every file at once: unreadable JSON, not a Bundle, a resource the FHIR
        library rejects, an unknown code, a missing value, time or reference.
    """
    out = parse_fhir(paths)
    if out.problems:
        raise DataValidationError(out.problems)
    return dict(out.tables)


def parse_fhir(paths: Sequence[Path]) -> FhirTables:
    """Read Bundle files; problems are collected, not raised (:func:`read_fhir` raises)."""
    sources = []
    problems: list[Problem] = []
    for path in paths:
        try:
            sources.append((Path(path).name, Path(path).read_bytes()))
        except OSError as exc:
            problems.append(Problem(Path(path).name, None, None, str(path), f"a file ({exc})"))
    out = parse_bundles(sources)
    return FhirTables(out.tables, (*problems, *out.problems), out.skipped)


def parse_bundles(sources: Sequence[tuple[str, bytes | str | Mapping[str, Any]]]) -> FhirTables:
    """Bundles given as (name, JSON text or parsed JSON) -> tables, problems, skipped counts.

    References are resolved across all the Bundles (``fullUrl`` or ``Type/id``).
    """
    problems: list[Problem] = []
    skipped: Counter[str] = Counter()
    entries: list[_Entry] = []
    for name, content in sources:
        entries.extend(_bundle_entries(name, content, problems, skipped))
    mapper = _Mapper(entries, problems, skipped)
    tables = mapper.tables()
    return FhirTables(tables, tuple(problems), dict(sorted(skipped.items())))


# --------------------------------------------------------------------------- bundles ----


def _validation_message(exc: ValidationError) -> tuple[str | None, str]:
    """The first failing field and every error of a pydantic error, as one line."""
    errors = exc.errors()
    parts = [f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in errors]
    first = ".".join(str(x) for x in errors[0]["loc"]) if errors else None
    return first or None, "; ".join(parts)


def _bundle_entries(
    name: str,
    content: bytes | str | Mapping[str, Any],
    problems: list[Problem],
    skipped: Counter[str],
) -> list[_Entry]:
    if isinstance(content, bytes | str):
        try:
            data = json.loads(content)
        except (ValueError, UnicodeDecodeError) as exc:
            problems.append(Problem(name, None, None, type(exc).__name__, f"JSON text ({exc})"))
            return []
    else:
        data = content
    if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
        got = data.get("resourceType") if isinstance(data, dict) else type(data).__name__
        problems.append(Problem(name, None, "resourceType", got, "a FHIR R4 Bundle"))
        return []
    if data.get("type") not in BUNDLE_TYPES:
        problems.append(
            Problem(
                name, None, "type", data.get("type"), f"a Bundle of type {', '.join(BUNDLE_TYPES)}"
            )
        )
        return []
    raw_entries = data.get("entry") or []
    if not isinstance(raw_entries, list):
        problems.append(Problem(name, None, "entry", type(raw_entries).__name__, "a list"))
        return []
    # the envelope (type, fullUrl, request) is validated without the resources, each resource
    # on its own below, so that one bad resource names its entry and nothing else fails
    envelope = {**data, "entry": [_without_resource(e) for e in raw_entries]}
    try:
        Bundle.model_validate(envelope)
    except ValidationError as exc:
        for err in exc.errors():
            loc = err["loc"]
            row = int(loc[1]) + 1 if len(loc) > 1 and loc[0] == "entry" else None
            problems.append(
                Problem(
                    name,
                    row,
                    ".".join(str(x) for x in loc),
                    _short(err.get("input")),
                    f"a valid FHIR R4 Bundle ({err['msg']})",
                )
            )
        return []
    out = []
    for i, raw in enumerate(raw_entries, start=1):
        if not isinstance(raw, dict) or not isinstance(raw.get("resource"), dict):
            problems.append(Problem(name, i, "resource", None, "an entry with a resource"))
            continue
        method = (raw.get("request") or {}).get("method")
        resource = raw["resource"]
        rtype = resource.get("resourceType")
        label = f"{rtype}/{resource.get('id') or raw.get('fullUrl') or '?'}"
        if method in ("DELETE", "PATCH"):
            problems.append(
                Problem(name, i, "request.method", method, "POST or PUT: imports never delete")
            )
            continue
        if not isinstance(rtype, str) or not rtype:
            problems.append(Problem(name, i, "resource.resourceType", rtype, "a resource type"))
            continue
        if rtype not in (*IMPORTED_TYPES, *REFERENCED_TYPES):
            skipped[f"{rtype}: resource type not imported"] += 1
            continue
        try:
            model = get_fhir_model_class(rtype).model_validate(resource)
        except ValidationError as exc:
            column, message = _validation_message(exc)
            problems.append(Problem(name, i, column, label, f"a valid FHIR R4 {rtype} ({message})"))
            continue
        except (ValueError, TypeError) as exc:  # the library's own checks outside pydantic
            problems.append(Problem(name, i, None, label, f"a valid FHIR R4 {rtype} ({exc})"))
            continue
        out.append(_Entry(name, i, raw.get("fullUrl"), model))
    return out


def _without_resource(entry: Any) -> Any:
    return {k: v for k, v in entry.items() if k != "resource"} if isinstance(entry, dict) else entry


def _short(value: Any) -> Any:
    text = value if isinstance(value, str | int | float | None) else repr(value)
    return text[:200] if isinstance(text, str) else text


# --------------------------------------------------------------------------- values -----


def _utc_text(value: Any) -> str | None:
    """A FHIR date, dateTime or instant as naive UTC ISO text (a date: its midnight)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        ts = pd.Timestamp(value)
    elif isinstance(value, date):
        ts = pd.Timestamp(value.isoformat())
    else:  # partial dates (``2024``, ``2024-03``) stay text in the models
        ts = pd.Timestamp(str(value))
    if ts.tz is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.isoformat()


def _codings(concept: Any) -> list[tuple[str | None, str | None]]:
    """(system, code) of every coding of a CodeableConcept, then ``(text, <text>)``."""
    if concept is None:
        return []
    out = [(c.system, c.code) for c in concept.coding or () if c.code]
    if concept.text:
        out.append(("text", concept.text))
    return out


def _describe(codes: list[tuple[str | None, str | None]]) -> str:
    return ", ".join(f"{s}|{c}" if s else str(c) for s, c in codes) or "no code"


def _quantity_unit(q: Any) -> str | None:
    return (q.code or q.unit) if q is not None else None


def _number(value: Any) -> float:
    return float(value)


# --------------------------------------------------------------------------- mapper -----


class _Mapper:
    """Maps the validated entries of all Bundles to raw tables (one instance per call)."""

    def __init__(self, entries: list[_Entry], problems: list[Problem], skipped: Counter[str]):
        self.entries = entries
        self.problems = problems
        self.skipped = skipped
        self.loinc = code_table("loinc")
        self.local = code_table("fhir")
        # fullUrl and Type/id -> entry, for references
        self.by_ref: dict[str, _Entry] = {}
        for e in entries:
            if e.full_url:
                self.by_ref[e.full_url] = e
            if e.resource.id:
                self.by_ref[f"{e.rtype}/{e.resource.id}"] = e

    # -- helpers ---------------------------------------------------------------------------

    def problem(self, e: _Entry, column: str | None, value: Any, expected: str, **kw: Any) -> None:
        self.problems.append(Problem(e.file, e.row, column, value, expected, **kw))

    def skip(self, e: _Entry, reason: str) -> None:
        self.skipped[f"{e.rtype}: {reason}"] += 1

    def patient_id_of(self, e: _Entry) -> str | None:
        """Patient.id, else its first identifier value, else the uuid of its ``fullUrl``."""
        p = e.resource
        if p.id:
            return str(p.id)
        for ident in p.identifier or ():
            if ident.value:
                return str(ident.value)
        if e.full_url:
            return e.full_url.rsplit(":", 1)[-1].rsplit("/", 1)[-1]
        return None

    def resolve(self, ref: Any, rtype: str) -> tuple[str | None, _Entry | None]:
        """(id, entry if in the Bundles) of a Reference to a ``rtype``; (None, None) if not."""
        text = getattr(ref, "reference", None) if ref is not None else None
        if not text:
            return None, None
        target = self.by_ref.get(text)
        if target is not None:
            if target.rtype != rtype:
                return None, None
            if rtype == "Patient":
                return self.patient_id_of(target), target
            return str(target.resource.id or text.rsplit(":", 1)[-1]), target
        m = _REFERENCE.search(text)
        if m is None or m.group(1) != rtype:
            return None, None
        return m.group(2), None

    def subject(self, e: _Entry, field_name: str = "subject") -> str | None:
        ref = getattr(e.resource, field_name, None)
        pid, _ = self.resolve(ref, "Patient")
        if pid is None:
            self.problem(
                e,
                field_name,
                getattr(ref, "reference", None),
                "a reference to a Patient (Patient/<id> or the fullUrl of a Patient entry)",
            )
        return pid

    def lookup(
        self,
        e: _Entry,
        concept: Any,
        targets: tuple[str, ...],
        column: str,
        table: str,
        **where: Any,
    ) -> CodeMapping | None:
        """The mapping row of a CodeableConcept; a problem when no table knows its codes.

        Returns None both for a problem and for a code listed as ``ignore`` (counted).
        """
        codes = _codings(concept)
        for system, code in codes:
            if system == LOINC_SYSTEM:
                hit = self.loinc.get(normalise_code(code))
            elif system in SYSTEM_PREFIXES:
                hit = self.local.get(normalise_code(f"{SYSTEM_PREFIXES[system]}:{code}"))
            elif system == "text":
                hit = self.local.get(normalise_code(f"text:{code}"))
            else:
                hit = None
            if hit is None:
                continue
            if hit.target == "ignore":
                self.skip(e, f"code {hit.code} ignored ({hit.label})")
                return None
            if hit.target not in targets:
                self.problem(
                    e,
                    column,
                    _describe(codes),
                    f"a code for {' or '.join(targets)}, not {hit.target} ({hit.label})",
                    **where,
                )
                return None
            return hit
        self.problem(e, column, _describe(codes), f"a code of {table}", **where)
        return None

    # -- tables ----------------------------------------------------------------------------

    def tables(self) -> dict[str, pd.DataFrame]:
        rows: dict[str, list[dict[str, Any]]] = {
            t: [] for t in ("icu_stays", "observations", "infusions", "episodes", "biomarkers")
        }
        biomarkers: dict[tuple[str, str], dict[str, Any]] = {}
        weights: dict[str, tuple[str, float, str | None, _Entry]] = {}
        for e in self.entries:
            rtype = e.rtype
            if rtype == "Encounter":
                rows["icu_stays"].extend(self.encounter(e))
            elif rtype == "Observation":
                for row in self.observation(e):
                    if row.pop("_biomarker", False):
                        key = (row["patient_id"], row["time"])
                        merged = biomarkers.setdefault(key, {"patient_id": key[0], "time": key[1]})
                        for col, value in row.items():
                            if col in merged and merged[col] != value:
                                self.problem(
                                    e,
                                    col,
                                    value,
                                    f"one {col} per patient and time ({merged[col]} also given)",
                                    patient_id=key[0],
                                    time=key[1],
                                )
                            merged[col] = value
                        continue
                    rows["observations"].append(row)
                    if row.pop("_weight", False):
                        pid = row["patient_id"]
                        if pid not in weights or row["time"] < weights[pid][0]:
                            weights[pid] = (row["time"], row["value"], row["unit"], e)
            elif rtype == "MedicationAdministration":
                rows["infusions"].extend(self.administration(e))
            elif rtype in ("Procedure", "DeviceUseStatement"):
                rows["episodes"].extend(self.episode(e))
        for r in rows["observations"]:
            r.pop("_weight", None)
        rows["biomarkers"] = list(biomarkers.values())
        patients, sites = self.patients(rows["icu_stays"], weights)
        out: dict[str, pd.DataFrame] = {}
        files = sorted({e.file for e in self.entries})
        if sites:
            out["sites"] = pd.DataFrame(sites)
        if patients:
            out["patients"] = pd.DataFrame(patients)
        for name, table_rows in rows.items():
            if table_rows:
                out[name] = pd.DataFrame(table_rows)
        for name, frame in out.items():
            cols = [c for c in TABLE_SPECS[name].columns if c in frame.columns]
            frame = frame[cols].reset_index(drop=True)
            frame.attrs["source"] = f"{', '.join(files)} ({name})"
            out[name] = frame
        return out

    def patients(
        self,
        stays: list[dict[str, Any]],
        weights: Mapping[str, tuple[str, float, str | None, _Entry]],
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        first_stay: dict[str, str] = {}
        for s in stays:
            pid = s["patient_id"]
            if pid not in first_stay or s["start"] < first_stay[pid]:
                first_stay[pid] = s["start"]
        patients: list[dict[str, Any]] = []
        sites: dict[str, dict[str, Any]] = {}
        for e in self.entries:
            if e.rtype != "Patient":
                continue
            p = e.resource
            pid = self.patient_id_of(e)
            if pid is None:
                self.problem(e, "id", None, "a Patient id, identifier or fullUrl")
                continue
            anchor = first_stay.get(pid)
            if anchor is None:
                self.problem(
                    e,
                    "anchor_time",
                    None,
                    "an Encounter with a location period for this patient (anchor_time is "
                    "the start of the first ICU stay)",
                    patient_id=pid,
                )
            weight = weights.get(pid)
            weight_kg = None
            if weight is None:
                self.problem(
                    e,
                    "weight_kg",
                    None,
                    f"a body weight Observation (LOINC {BODY_WEIGHT_LOINC}) of this patient",
                    patient_id=pid,
                )
            elif unit_key(weight[2]) != unit_key(CONCEPTS["weight"].unit):
                w = weight[3]
                self.problem(
                    w,
                    "valueQuantity.code",
                    weight[2],
                    "body weight in kg (patients.weight_kg has no unit column)",
                    patient_id=pid,
                )
            else:
                weight_kg = weight[1]
            death = None
            if p.deceasedDateTime is not None:
                death = _utc_text(p.deceasedDateTime)
            elif p.deceasedBoolean:
                self.problem(
                    e,
                    "deceasedBoolean",
                    True,
                    "deceasedDateTime (a death without its time cannot be placed on a study day)",
                    patient_id=pid,
                )
            age = None
            if p.birthDate is not None and anchor is not None:
                born = pd.Timestamp(_utc_text(p.birthDate))
                at = pd.Timestamp(anchor)
                age = float(at.year - born.year - ((at.month, at.day) < (born.month, born.day)))
            site_id = DEFAULT_SITE
            if p.managingOrganization is not None:
                org_id, org = self.resolve(p.managingOrganization, "Organization")
                if org_id is None:
                    self.problem(
                        e,
                        "managingOrganization",
                        p.managingOrganization.reference,
                        "a reference to an Organization (Organization/<id>)",
                        patient_id=pid,
                    )
                    continue
                site_id = org_id
                name = org.resource.name if org is not None else None
                sites.setdefault(site_id, {"site_id": site_id, "name": name})
            row = {
                "patient_id": pid,
                "site_id": site_id,
                "anchor_time": anchor,
                "weight_kg": weight_kg,
                "death_time": death,
                "age_years": age,
                "sex": {"female": "F", "male": "M"}.get(p.gender or ""),
                "randomised_at": None,
            }
            # the same Patient in several Bundles of one import is one row (different content
            # stays two rows: a duplicate key for validation to report)
            if row not in patients:
                patients.append(row)
        return patients, [s for s in sites.values() if s["name"] is not None]

    def encounter(self, e: _Entry) -> list[dict[str, Any]]:
        enc = e.resource
        if enc.status in ("cancelled", "entered-in-error", "planned"):
            self.skip(e, f"status {enc.status}")
            return []
        located = [loc for loc in enc.location or () if loc.period is not None]
        if not located:
            self.skip(e, "no location with a period (not an ICU stay)")
            return []
        pid = self.subject(e)
        if pid is None:
            return []
        out = []
        for loc in located:
            if loc.status == "planned":
                self.skip(e, "planned location")
                continue
            if loc.period.start is None:
                self.problem(e, "location.period.start", None, "the start of the stay")
                continue
            ref = loc.location
            unit = ref.display
            if not unit:
                loc_id, target = self.resolve(ref, "Location")
                unit = (target.resource.name if target is not None else None) or loc_id
            out.append(
                {
                    "patient_id": pid,
                    "unit": unit or ref.reference,
                    "start": _utc_text(loc.period.start),
                    "stop": _utc_text(loc.period.end),
                }
            )
        return out

    def observation(self, e: _Entry) -> list[dict[str, Any]]:
        obs = e.resource
        if obs.status not in OBSERVATION_STATUSES:
            self.skip(e, f"status {obs.status}")
            return []
        time = _utc_text(
            obs.effectiveDateTime
            or obs.effectiveInstant
            or (obs.effectivePeriod.start if obs.effectivePeriod is not None else None)
        )
        parts = [(obs, "")]
        parts += [(c, f"component[{i}].") for i, c in enumerate(obs.component or ())]
        valued = [(p, prefix) for p, prefix in parts if self._has_value(p)]
        if not valued:
            self.skip(e, "no value")
            return []
        pid = self.subject(e)
        if time is None:
            self.problem(e, "effectiveDateTime", None, "effectiveDateTime or effectivePeriod.start")
        if pid is None or time is None:
            return []
        out = []
        for part, prefix in valued:
            hit = self.lookup(
                e,
                part.code,
                ("observations", "biomarkers"),
                f"{prefix}code",
                "core/io/mappings/loinc.csv (LOINC) or the local: codes of "
                "core/io/mappings/fhir.csv",
                patient_id=pid,
                time=time,
            )
            if hit is None:
                continue
            value, unit = self._value(e, part, prefix, hit)
            if value is None:
                continue
            if hit.target == "biomarkers":
                column = BIOMARKER_COLUMNS[hit.variable]
                factor = CONCEPTS[hit.variable].units.get(unit_key(unit) or "")
                if factor != 1.0:
                    self.problem(
                        e,
                        f"{prefix}valueQuantity.code",
                        unit,
                        f"{CONCEPTS[hit.variable].unit} (biomarkers.{column} has no unit column)",
                        patient_id=pid,
                        time=time,
                    )
                    continue
                out.append({"patient_id": pid, "time": time, column: value, "_biomarker": True})
                continue
            out.append(
                {
                    "patient_id": pid,
                    "time": time,
                    "variable": hit.variable,
                    "value": value,
                    "unit": unit,
                    "source": f"Observation/{obs.id or e.full_url}",
                    "_weight": hit.variable == "weight",
                }
            )
        return out

    @staticmethod
    def _has_value(part: Any) -> bool:
        return any(
            getattr(part, f, None) is not None
            for f in (
                "valueQuantity",
                "valueInteger",
                "valueString",
                "valueCodeableConcept",
                "valueBoolean",
                "valueRatio",
                "valueSampledData",
                "valueTime",
                "valueDateTime",
                "valuePeriod",
                "valueRange",
            )
        )

    def _value(
        self, e: _Entry, part: Any, prefix: str, hit: CodeMapping
    ) -> tuple[float | None, str | None]:
        q = part.valueQuantity
        if q is not None:
            if q.comparator is not None:
                self.problem(
                    e,
                    f"{prefix}valueQuantity.comparator",
                    f"{q.comparator}{q.value}",
                    "an exact value (a censored value is not imported)",
                )
                return None, None
            if q.value is None:
                self.problem(e, f"{prefix}valueQuantity.value", None, "a number")
                return None, None
            return _number(q.value), _quantity_unit(q) or hit.unit
        if part.valueInteger is not None:
            return _number(part.valueInteger), hit.unit
        self.problem(
            e,
            f"{prefix}value[x]",
            "another value type",
            f"valueQuantity or valueInteger ({hit.label})",
        )
        return None, None

    def administration(self, e: _Entry) -> list[dict[str, Any]]:
        ma = e.resource
        if ma.status not in ADMINISTRATION_STATUSES:
            self.skip(e, f"status {ma.status}")
            return []
        concept = ma.medicationCodeableConcept
        if concept is None and ma.medicationReference is not None:
            _, med = self.resolve(ma.medicationReference, "Medication")
            if med is None:
                self.problem(
                    e,
                    "medicationReference",
                    ma.medicationReference.reference,
                    "a reference to a Medication entry of the Bundle",
                )
                return []
            concept = med.resource.code
        pid = self.subject(e)
        hit = self.lookup(
            e,
            concept,
            ("infusions",),
            "medication",
            "core/io/mappings/fhir.csv (RxNorm, ATC or text)",
            patient_id=pid,
        )
        if hit is None or pid is None:
            return []
        period = ma.effectivePeriod
        if period is None or period.start is None or period.end is None:
            self.problem(
                e,
                "effectivePeriod",
                None,
                "effectivePeriod with start and end (an infusion; boluses are not imported)",
                patient_id=pid,
            )
            return []
        rate, unit = self._rate(e, ma.dosage)
        if rate is None:
            return []
        return [
            {
                "patient_id": pid,
                "drug": hit.variable,
                "start": _utc_text(period.start),
                "stop": _utc_text(period.end),
                "rate": rate,
                "unit": unit or hit.unit,
            }
        ]

    def _rate(self, e: _Entry, dosage: Any) -> tuple[float | None, str | None]:
        q = dosage.rateQuantity if dosage is not None else None
        if q is not None and q.value is not None:
            return _number(q.value), _quantity_unit(q)
        r = dosage.rateRatio if dosage is not None else None
        if r is not None and r.numerator is not None and r.numerator.value is not None:
            den = r.denominator
            if den is None or den.value is None or float(den.value) == 1.0:
                den_unit = _quantity_unit(den) if den is not None else None
                unit = _quantity_unit(r.numerator)
                return _number(r.numerator.value), f"{unit}/{den_unit}" if den_unit else unit
        self.problem(
            e, "dosage.rateQuantity", None, "a rate (dosage.rateQuantity, e.g. 0.1 ug/kg/min)"
        )
        return None, None

    def episode(self, e: _Entry) -> list[dict[str, Any]]:
        res = e.resource
        if e.rtype == "Procedure":
            if res.status not in PROCEDURE_STATUSES:
                self.skip(e, f"status {res.status}")
                return []
            concept, column = res.code, "code"
            period, moment = res.performedPeriod, res.performedDateTime
            table = "core/io/mappings/fhir.csv (SNOMED CT procedures)"
        else:
            if res.status not in DEVICE_USE_STATUSES:
                self.skip(e, f"status {res.status}")
                return []
            _, device = self.resolve(res.device, "Device")
            if device is None:
                self.problem(
                    e, "device", res.device.reference, "a reference to a Device entry of the Bundle"
                )
                return []
            concept, column = device.resource.type, "device.type"
            period, moment = res.timingPeriod, res.timingDateTime
            table = "core/io/mappings/fhir.csv (SNOMED CT devices and procedures)"
        pid = self.subject(e)
        hit = self.lookup(e, concept, ("episodes",), column, table, patient_id=pid)
        if hit is None or pid is None:
            return []
        start = _utc_text(period.start if period is not None else moment)
        if start is None:
            self.problem(
                e,
                "performedPeriod" if e.rtype == "Procedure" else "timingPeriod",
                None,
                "a period with a start",
                patient_id=pid,
            )
            return []
        return [
            {
                "patient_id": pid,
                "kind": hit.variable,
                "start": start,
                "stop": _utc_text(period.end) if period is not None else None,
            }
        ]
