"""Recomputation of the derived daily SOFA and its provenance for the affected patients."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from core import db
from core.derive import derive_daily_sofa
from core.io.schema import DEFAULT_SOFA_RULES
from core.io.stored import chunks, read_table
from core.rules import SofaRules
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


def recompute_derived(
    conn: Connection,
    patient_ids: Sequence[str],
    *,
    rules: SofaRules = DEFAULT_SOFA_RULES,
    fresh: Mapping[str, pd.DataFrame] | None = None,
) -> int:
    """Recompute daily SOFA and provenance of some patients inside the caller's transaction.

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
    for chunk in chunks(ids):
        conn.execute(db.sofa_provenance.delete().where(db.sofa_provenance.c.patient_id.in_(chunk)))
        conn.execute(db.daily_sofa.delete().where(db.daily_sofa.c.patient_id.in_(chunk)))
    daily = _daily_rows(result.daily, key)
    db.bulk_insert(conn, db.daily_sofa, daily)
    prov = _provenance_rows(result.provenance, key)
    db.bulk_insert(conn, db.sofa_provenance, prov)
    return len(daily)
