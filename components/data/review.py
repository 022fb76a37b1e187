"""Data layer of the data-quality review workspace (``/review``, docs/review.md).

Frames in, frames out, from :mod:`core.review`. What depends on the data only (issues,
organ-days, recruitment) is memoized per :class:`~components.data.keys.Context` (data version,
rules, sites: an import gives new keys); the review marks and queries change without an
import, so they are read fresh on every call. The arm visibility is dropped from the key: no
function here depends on the arm, and none reads the randomisation (the review covers
observations, infusions, the derived daily SOFA and the import log only).

Actions (mark reviewed, raise / answer / close a query) take the request's principal and
return ``(ok, message)``: a refusal of :mod:`core.review` (role, site, state, input) comes
back as its message, nothing written.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from components.data.keys import Context
from components.server.auth import ArmVisibility, Principal
from components.server.cache import cache
from components.server.context import engine
from core.exceptions import ImmunoSepError
from core.repository import load_data_cutoff
from core.review import (
    Action,
    Actor,
    IssueReport,
    answer_query,
    close_query,
    issue_list,
    load_queries,
    mark_reviewed,
    may,
    organ_days,
    raise_query,
    recruitment_by_week,
    review_patients,
    review_status,
    site_summary,
)
from core.review.issues import load_endpoint_daily


def review_context(ctx: Context) -> Context:
    """The key of the review's cached data: the access's sites, never the arm visibility."""
    return replace(ctx, visibility=ArmVisibility.NONE)


def actor(principal: Principal) -> Actor:
    return Actor(principal.user, principal.role.value, principal.sites)


def may_do(principal: Principal, action: Action) -> bool:
    """May this principal do ``action`` (:data:`core.review.PERMISSIONS`)?"""
    return may(principal.role.value, action)


@cache.memoize()
def _patients(ctx: Context) -> pd.DataFrame:
    return review_patients(engine(), ctx.sites)


def patients(ctx: Context) -> pd.DataFrame:
    """The reviewed patients (trial participants of the access's sites). A copy."""
    return _patients(review_context(ctx)).copy()


@cache.memoize()
def _issues(ctx: Context) -> IssueReport:
    return issue_list(
        engine(),
        sofa_rules=ctx.sofa_rules,
        endpoint_rules=ctx.endpoint_rules,
        site_ids=ctx.sites,
    )


def issues(ctx: Context) -> IssueReport:
    """The issue list of the access's sites (memoized per data version)."""
    return _issues(review_context(ctx))


@cache.memoize()
def _cells(ctx: Context) -> pd.DataFrame:
    p = _patients(ctx)
    with engine().connect() as conn:
        daily = load_endpoint_daily(
            conn,
            rules_key=ctx.sofa_rules.key(),
            last_day=ctx.endpoint_rules.last_day,
            patient_ids=p["patient_id"].tolist(),
        )
    return organ_days(
        p,
        daily,
        load_data_cutoff(engine()),
        sofa_rules=ctx.sofa_rules,
        endpoint_rules=ctx.endpoint_rules,
    )


def queries(ctx: Context) -> pd.DataFrame:
    """Every query of the access's sites, newest first (read fresh)."""
    return load_queries(engine(), ctx.sites)


def summary(ctx: Context) -> pd.DataFrame:
    """The per-site summary (cached organ-days and issues; fresh query counts)."""
    rctx = review_context(ctx)
    return site_summary(_patients(rctx), _cells(rctx), queries(ctx), _issues(rctx).issues)


@cache.memoize()
def _recruitment(ctx: Context) -> pd.DataFrame:
    return recruitment_by_week(_patients(ctx))


def recruitment(ctx: Context) -> pd.DataFrame:
    """Randomisations per site per week (memoized per data version)."""
    return _recruitment(review_context(ctx)).copy()


def status(ctx: Context) -> pd.DataFrame:
    """Review status per patient-form (read fresh: a mark or an import changes it)."""
    return review_status(engine(), patients(ctx))


# --- actions ------------------------------------------------------------------------------------


def _run(fn, *args, **kwargs) -> tuple[bool, str]:
    try:
        fn(*args, **kwargs)
    except (ImmunoSepError, PermissionError) as exc:
        return False, str(exc)
    return True, ""


def mark(principal: Principal, rows: list[tuple[str, str]]) -> tuple[bool, str]:
    """Mark patient-forms reviewed; stops at the first refusal (earlier marks stay)."""
    if not rows:
        return False, "Select one or more patient-forms in the review status table first."
    for patient_id, form in rows:
        ok, msg = _run(mark_reviewed, engine(), actor(principal), patient_id, form)
        if not ok:
            return False, msg
    return True, f"Marked {len(rows)} patient-form(s) reviewed."


def raise_(
    principal: Principal,
    *,
    patient_id: str,
    form: str,
    variable: str,
    text: str,
    obs_time: str | None,
    value: float | str | None,
) -> tuple[bool, str]:
    """Raise a query; the time and value come from the selected issue (as shown)."""
    if not patient_id or not form:
        return False, "Select an issue (or enter a patient and a form) before raising a query."
    try:
        when = pd.Timestamp(obs_time) if obs_time else None
        number = None if value in (None, "") else float(value)
    except (TypeError, ValueError) as exc:
        return False, f"time {obs_time!r} / value {value!r}: not a time and a number ({exc})"
    ok, msg = _run(
        raise_query,
        engine(),
        actor(principal),
        patient_id=str(patient_id).strip(),
        form=str(form),
        variable=str(variable or ""),
        text=text,
        obs_time=when,
        value=number,
    )
    return ok, msg or f"Query raised on {patient_id} ({form})."


def answer(principal: Principal, query_id: int | None, text: str) -> tuple[bool, str]:
    if query_id is None:
        return False, "Select a query in the query table first."
    ok, msg = _run(answer_query, engine(), actor(principal), int(query_id), text)
    return ok, msg or f"Query {query_id} answered."


def close(principal: Principal, query_id: int | None, note: str) -> tuple[bool, str]:
    if query_id is None:
        return False, "Select a query in the query table first."
    ok, msg = _run(close_query, engine(), actor(principal), int(query_id), note)
    return ok, msg or f"Query {query_id} closed."
