"""Recomputation of the derived daily SOFA and its provenance for the affected patients."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from core import db
from core.derive import derive_daily_sofa
from core.io.schema import DEFAULT_SOFA_RULES
from core.io.stored import chunks, read_table
from core.rules import SofaRules
from core.time import study_day
from core.units import stored_scored_rates


def _derive(
    observations: pd.DataFrame,
    infusions: pd.DataFrame,
    episodes: pd.DataFrame,
    patients: pd.DataFrame,
    *,
    rules: SofaRules,
) -> Any:
    """Derived daily SOFA (indirection so tests can interrupt an import here)."""
    return derive_daily_sofa(observations, infusions, episodes, patients, rules=rules)


def _daily_rows(daily: pd.DataFrame, rules_key: str) -> pd.DataFrame:
    out = pd.DataFrame(index=daily.index)
    for c in db.daily_sofa.columns:
        if c.name == "rules_key":
            out[c.name] = rules_key
        elif c.name in daily.columns:
            s = daily[c.name]
            if isinstance(c.type, sa.Float):
                s = pd.to_numeric(s, errors="coerce").astype("float64")
            elif isinstance(c.type, sa.Boolean):
                s = (
                    s.astype(object)
                    .where(s.notna(), None)
                    .map(lambda v: v if v is None else bool(v))
                )
            elif isinstance(c.type, sa.Integer):
                s = (
                    s.astype(object)
                    .where(s.notna(), None)
                    .map(lambda v: v if v is None else int(v))
                )
            else:
                s = s.astype(object).where(s.notna(), None)
            out[c.name] = s
        else:
            out[c.name] = None
    return out


def _provenance_rows(prov: pd.DataFrame, rules_key: str) -> pd.DataFrame:
    out = pd.DataFrame(index=prov.index)
    for c in db.sofa_provenance.columns:
        if c.name == "id":
            continue
        if c.name == "rules_key":
            out[c.name] = rules_key
        elif c.name not in prov.columns:
            out[c.name] = None
        elif isinstance(c.type, sa.Float):
            out[c.name] = pd.to_numeric(prov[c.name], errors="coerce").astype("float64")
        elif isinstance(c.type, sa.DateTime):
            out[c.name] = pd.to_datetime(prov[c.name], errors="coerce").astype("datetime64[ns]")
        elif isinstance(c.type, sa.Integer):
            out[c.name] = prov[c.name].astype("int64")
        elif isinstance(c.type, sa.Boolean):
            s = prov[c.name]
            out[c.name] = (
                s.astype(object).where(s.notna(), None).map(lambda v: v if v is None else bool(v))
            )
        else:
            s = prov[c.name]
            out[c.name] = (
                s.astype(object).where(s.notna(), None).map(lambda v: v if v is None else str(v))
            )
    return out


#: study days before the first day a batch touches that are rewritten anyway (a margin: the
#: derivation only looks back in time, so those days cannot change; tests/test_append.py)
REWRITE_MARGIN_DAYS: Final = 1


def recompute_derived(
    conn: Connection,
    patient_ids: Sequence[str],
    *,
    rules: SofaRules = DEFAULT_SOFA_RULES,
    fresh: Mapping[str, pd.DataFrame] | None = None,
    since: Mapping[str, pd.Timestamp] | None = None,
) -> int:
    """Recompute daily SOFA and provenance of some patients inside the caller's transaction.

    The patients' whole raw history is derived again (LOCF and the day-1 rules need it), but
    with ``since`` only the derived rows that can have changed are replaced: a patient whose
    new raw rows start at time ``t`` keeps the stored rows of the study days before the day of
    ``t`` (minus :data:`REWRITE_MARGIN_DAYS`). The derivation is causal (worst value per day,
    LOCF forward, FiO2 and pre-sedation GCS looked up backwards in time), so those days are
    the same; tests/test_append.py checks the rows against a full recompute. Rewriting every
    day of every affected patient was most of an append import (docs/ward.md, performance).

    Parameters
    ----------
    conn
        Connection inside the import transaction.
    patient_ids
        Patients whose derived rows are replaced (under every ``rules_key``: older rule sets
        would otherwise go stale).
    rules
        SOFA rules of the new derived rows.
    fresh
        Optional storable ``patients`` / ``observations`` / ``infusions`` / ``episodes``
        frames of patients created by this very import: their stored rows are exactly these,
        so they are not read back.
    since
        Patient -> the earliest time of the raw rows this import adds for them (new
        observations, infusions, episodes); patients not in it get every day rewritten.

    Returns
    -------
    int
        Number of daily rows written.
    """
    ids = sorted(set(patient_ids))
    if not ids:
        return 0
    fresh_ids: set[str] = set()
    if fresh is not None and "patients" in fresh:
        fresh_ids = set(fresh["patients"]["patient_id"]) & set(ids)
    stored_ids = [p for p in ids if p not in fresh_ids]
    raw: dict[str, pd.DataFrame] = {}
    for name in ("patients", "observations", "infusions", "episodes"):
        parts = []
        if stored_ids:
            parts.append(read_table(conn, db.metadata.tables[name], patient_ids=stored_ids))
        if fresh_ids:
            frame = fresh[name] if fresh is not None and name in fresh else None
            if frame is None:
                frame = read_table(conn, db.metadata.tables[name], patient_ids=[])
            parts.append(frame[frame["patient_id"].isin(fresh_ids)])
        parts = [p for p in parts if len(p)] or parts[:1]
        raw[name] = (
            pd.concat(parts, ignore_index=True)
            if len(parts) > 1
            else parts[0].reset_index(drop=True)
        )
    inf = stored_scored_rates(raw["infusions"])
    result = _derive(raw["observations"], inf, raw["episodes"], raw["patients"], rules=rules)
    key = rules.key()
    first = _first_days(raw["patients"], since or {}, ids, rules)
    whole = [p for p in ids if first[p] <= 1]
    for chunk in chunks(whole):
        conn.execute(db.sofa_provenance.delete().where(db.sofa_provenance.c.patient_id.in_(chunk)))
        conn.execute(db.daily_sofa.delete().where(db.daily_sofa.c.patient_id.in_(chunk)))
    partial = [p for p in ids if first[p] > 1]
    for chunk in chunks(partial):
        # other rule sets' rows of these patients are stale as a whole
        for t in (db.sofa_provenance, db.daily_sofa):
            conn.execute(t.delete().where(t.c.patient_id.in_(chunk), t.c.rules_key != key))
    if partial:
        for t in (db.sofa_provenance, db.daily_sofa):
            conn.execute(
                t.delete().where(
                    t.c.patient_id == sa.bindparam("p"),
                    t.c.rules_key == key,
                    t.c.study_day >= sa.bindparam("d"),
                ),
                [{"p": p, "d": first[p]} for p in partial],
            )
    daily = result.daily
    daily = daily[daily["study_day"].to_numpy() >= daily["patient_id"].map(first).to_numpy()]
    prov = result.provenance
    prov = prov[prov["study_day"].to_numpy() >= prov["patient_id"].map(first).to_numpy()]
    daily = _daily_rows(daily.reset_index(drop=True), key)
    db.bulk_insert(conn, db.daily_sofa, daily)
    db.bulk_insert(conn, db.sofa_provenance, _provenance_rows(prov.reset_index(drop=True), key))
    return len(daily)


def _first_days(
    patients: pd.DataFrame,
    since: Mapping[str, pd.Timestamp],
    ids: Sequence[str],
    rules: SofaRules,
) -> dict[str, int]:
    """Per patient: the first study day whose derived rows are replaced (1: all of them)."""
    out = dict.fromkeys(ids, 1)
    known = [p for p in ids if p in since]
    if not known:
        return out
    anchors = patients.drop_duplicates("patient_id").set_index("patient_id")["anchor_time"]
    times = pd.Series([pd.Timestamp(since[p]) for p in known], index=known)
    days = study_day(times, anchors.reindex(known), rules=rules)
    for p, d in days.items():
        if not pd.isna(d):
            out[str(p)] = max(1, int(d) - REWRITE_MARGIN_DAYS)
    return out
