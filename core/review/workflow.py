"""Review marks and data queries: stored, role-checked, every action on the audit trail.

Roles (docs/review.md "Roles"; role names are those of ``components.server.auth.Role``):

=================  ======  ===========  =====  ======  =====
role               view    mark review  raise  answer  close
=================  ======  ===========  =====  ======  =====
monitor            yes     yes          yes    no      yes
statistician       yes     yes          yes    yes     yes
dsmb               yes     no           no     no      no
demo               yes     yes          yes    yes     yes
clinician          no      no           no     no      no
=================  ======  ===========  =====  ======  =====

The statistician is the trial's data manager (the role that imports, ``INGEST_ROLES``): it
answers queries with the site's source data. The DSMB reads (it does not clean data). The
demo role (demo mode, synthetic data only) may do everything so the workflow can be tried.
Clinicians have no access. A principal limited to some sites acts on those sites' patients
only.

Review status of a patient-form (:func:`review_status`): ``not reviewed``; ``reviewed`` (by
whom, when); ``new data since review`` when the form's stored rows changed after the newest
mark (the mark stores the form's row count and largest row id; the raw tables are append-only,
so an import that adds a row to the form always changes them). The reset needs no write: the
status is computed against the stored data on every read.

Query lifecycle: ``open`` (raised on a value) -> ``answered`` -> ``closed``; the steps after the
raise (from-states, to-state, roles, audit action) are one table, :data:`QUERY_STEPS`, applied
by one function, :func:`transition_query`. Each write and its
audit row (``core.audit.append_audit_row``: actions ``review_mark``, ``query_raise``,
``query_answer``, ``query_close``) commit in one transaction, so no action is stored without
its audit row. A refused action writes nothing and raises :class:`ReviewPermissionError` or
:class:`ReviewInputError` naming what was wrong.

Query texts are read by blinded monitors: a text naming an arm, a study product or a coded
group is refused (:data:`ALLOCATION_WORDS`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from core import db
from core.audit import append_audit_row, record_audit
from core.exceptions import ImmunoSepError
from core.review.forms import FORM_OF, FORMS

#: longest query, answer or close note (characters)
MAX_TEXT_CHARS: Final = 2000


class Action(StrEnum):
    VIEW = "view"
    MARK = "mark reviewed"
    RAISE = "raise a query"
    ANSWER = "answer a query"
    CLOSE = "close a query"


class QueryStatus(StrEnum):
    OPEN = "open"
    ANSWERED = "answered"
    CLOSED = "closed"


@dataclass(frozen=True)
class QueryStep:
    """One step of the query lifecycle (a row of :data:`QUERY_STEPS`).

    ``action`` moves a query in one of ``from_states`` to ``to_state``; ``roles`` may do it;
    the write stamps ``<stamp>_by``, ``<stamp>_role``, ``<stamp>_at`` and stores the text in
    ``text_column`` (checked as ``text_label``: required or optional); the audit row is
    ``audit_action``."""

    action: Action
    from_states: frozenset[QueryStatus]
    to_state: QueryStatus
    roles: frozenset[str]
    audit_action: str
    stamp: str
    text_column: str
    text_label: str
    text_required: bool


#: the query lifecycle after the raise (``open``): answer, then close (module docstring)
QUERY_STEPS: Final = MappingProxyType(
    {
        Action.ANSWER: QueryStep(
            action=Action.ANSWER,
            from_states=frozenset({QueryStatus.OPEN}),
            to_state=QueryStatus.ANSWERED,
            roles=frozenset({"statistician", "demo"}),
            audit_action="query_answer",
            stamp="answered",
            text_column="answer",
            text_label="answer",
            text_required=True,
        ),
        Action.CLOSE: QueryStep(
            action=Action.CLOSE,
            from_states=frozenset({QueryStatus.ANSWERED}),
            to_state=QueryStatus.CLOSED,
            roles=frozenset({"monitor", "statistician", "demo"}),
            audit_action="query_close",
            stamp="closed",
            text_column="close_note",
            text_label="close note",
            text_required=False,
        ),
    }
)

#: who may do what (module docstring); role names as ``components.server.auth.Role`` values;
#: the roles of the query steps are those of :data:`QUERY_STEPS`
PERMISSIONS: Final = MappingProxyType(
    {
        Action.VIEW: frozenset({"monitor", "statistician", "dsmb", "demo"}),
        Action.MARK: frozenset({"monitor", "statistician", "demo"}),
        Action.RAISE: frozenset({"monitor", "statistician", "demo"}),
        **{action: step.roles for action, step in QUERY_STEPS.items()},
    }
)


class ReviewStatus(StrEnum):
    NOT_REVIEWED = "not reviewed"
    REVIEWED = "reviewed"
    NEW_DATA = "new data since review"


#: words that name the allocation; refused in query texts (read by blinded monitors)
ALLOCATION_WORDS: Final = (
    "placebo",
    "precision immunotherapy",
    "anakinra",
    "interferon",
    "ifn",
    "rhifn",
    "group a",
    "group b",
    "treatment arm",
    "allocation",
    "allocated",
    "unblind",
    "randomised to",
    "randomized to",
)
_ALLOCATION_RE: Final = re.compile(
    r"\b(" + "|".join(re.escape(w) for w in ALLOCATION_WORDS) + r")\b", re.IGNORECASE
)


class ReviewPermissionError(ImmunoSepError, PermissionError):
    """The actor's role or sites do not allow the action (nothing was written)."""


class ReviewInputError(ImmunoSepError, ValueError):
    """A review action with wrong input or in the wrong state (nothing was written)."""


@dataclass(frozen=True)
class Actor:
    """Who acts: user name, role (``components.server.auth.Role`` value) and sites (None:
    all)."""

    user: str
    role: str
    sites: tuple[str, ...] | None = None


def may(role: str, action: Action) -> bool:
    """May ``role`` do ``action`` (:data:`PERMISSIONS`)?"""
    return role in PERMISSIONS[action]


def require(actor: Actor, action: Action) -> None:
    """Raise :class:`ReviewPermissionError` unless the actor's role may do ``action``."""
    if not may(actor.role, action):
        allowed = ", ".join(sorted(PERMISSIONS[action]))
        raise ReviewPermissionError(
            f"role {actor.role!r} (user {actor.user!r}) may not {action.value}; "
            f"allowed roles: {allowed} (docs/review.md)"
        )


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _naive(value: datetime | None) -> datetime:
    if value is None:
        return _utcnow()
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def _write(engine: Engine) -> Any:
    """A connection for one review write and its audit row (SQLite: the write lock at BEGIN;
    PostgreSQL: the audit head's row lock, taken by ``append_audit_row``)."""
    if db.is_sqlite(engine):
        return engine.connect().execution_options(sqlite_begin="IMMEDIATE")
    return engine.connect()


def _audit(conn: Connection, engine: Engine, **row: Any) -> None:
    """The audit row of a review write, before the write commits.

    One store (PostgreSQL, in-memory SQLite): in the write's own transaction, so both or
    neither land. A SQLite file keeps its audit trail in a store of its own
    (:func:`core.db.audit_engine`): the row is appended there in its own short transaction
    while the review write is still open, so a failed audit write rolls the review write
    back; only a failure of the final commit itself could leave a row for a write that did
    not land (the trail then over-reports, never under-reports)."""
    if db.audit_engine(engine) is engine:
        append_audit_row(conn, **row)
    else:
        record_audit(engine, **row)


def _patient_site(conn: Connection, actor: Actor, patient_id: str) -> str:
    """The site of a reviewed patient the actor may act on (else a clear refusal)."""
    row = conn.execute(
        sa.select(db.patients.c.site_id, db.patients.c.randomised_at).where(
            db.patients.c.patient_id == str(patient_id)
        )
    ).first()
    if row is None:
        raise ReviewInputError(f"patient {patient_id!r}: no such patient is stored")
    if row.randomised_at is None:
        raise ReviewInputError(
            f"patient {patient_id!r}: not a trial participant (not randomised); the review "
            "covers trial participants only"
        )
    if actor.sites is not None and row.site_id not in actor.sites:
        raise ReviewPermissionError(
            f"patient {patient_id!r} is at site {row.site_id!r}; user {actor.user!r} may act on "
            f"sites {', '.join(actor.sites) or '(none)'} only"
        )
    return str(row.site_id)


def _check_form(form: str) -> None:
    if form not in FORMS:
        raise ReviewInputError(f"form {form!r}: expected one of {', '.join(FORMS)}")


def _check_text(text: str | None, what: str) -> str:
    value = (text or "").strip()
    if not value:
        raise ReviewInputError(f"{what}: empty; expected a text (1-{MAX_TEXT_CHARS} characters)")
    if len(value) > MAX_TEXT_CHARS:
        raise ReviewInputError(
            f"{what}: {len(value)} characters; expected at most {MAX_TEXT_CHARS}"
        )
    hit = _ALLOCATION_RE.search(value)
    if hit:
        raise ReviewInputError(
            f"{what}: mentions {hit.group(0)!r}; queries are read by blinded monitors: describe "
            "the data, never the allocation or a study product (docs/review.md)"
        )
    return value


# --- review status ------------------------------------------------------------------------------


def form_fingerprints(conn: Connection, patient_ids: Iterable[str] | None = None) -> pd.DataFrame:
    """``patient_id, form, n_rows, max_row_id`` of every patient-form with stored rows
    (observations by variable, scored infusions in the cardiovascular form)."""
    o, i = db.observations, db.infusions
    q1 = sa.select(
        o.c.patient_id, o.c.variable, sa.func.count().label("n"), sa.func.max(o.c.id).label("m")
    ).group_by(o.c.patient_id, o.c.variable)
    q2 = sa.select(
        i.c.patient_id, i.c.drug, sa.func.count().label("n"), sa.func.max(i.c.id).label("m")
    ).group_by(i.c.patient_id, i.c.drug)
    if patient_ids is not None:
        ids = list(patient_ids)
        q1 = q1.where(o.c.patient_id.in_(ids))
        q2 = q2.where(i.c.patient_id.in_(ids))
    rows = [tuple(r) for r in (*conn.execute(q1).all(), *conn.execute(q2).all())]
    frame = pd.DataFrame(rows, columns=["patient_id", "variable", "n", "m"])
    frame["form"] = frame["variable"].map(FORM_OF)
    frame = frame[frame["form"].notna()]
    out = (
        frame.groupby(["patient_id", "form"])
        .agg(n_rows=("n", "sum"), max_row_id=("m", "max"))
        .reset_index()
    )
    out["n_rows"] = out["n_rows"].astype(int)
    out["max_row_id"] = out["max_row_id"].astype(int)
    return out


def _latest_marks(conn: Connection, patient_ids: Iterable[str] | None) -> pd.DataFrame:
    t = db.review_marks
    latest = sa.select(sa.func.max(t.c.id)).group_by(t.c.patient_id, t.c.form)
    q = sa.select(
        t.c.patient_id,
        t.c.form,
        t.c.reviewed_by,
        t.c.reviewed_role,
        t.c.reviewed_at,
        t.c.n_rows.label("marked_rows"),
        t.c.max_row_id.label("marked_max_id"),
    ).where(t.c.id.in_(latest))
    if patient_ids is not None:
        q = q.where(t.c.patient_id.in_(list(patient_ids)))
    cols = [
        "patient_id",
        "form",
        "reviewed_by",
        "reviewed_role",
        "reviewed_at",
        "marked_rows",
        "marked_max_id",
    ]
    frame = pd.DataFrame([tuple(r) for r in conn.execute(q).all()], columns=cols)
    frame["reviewed_at"] = pd.to_datetime(frame["reviewed_at"])
    return frame


def review_status(engine: Engine, patients: pd.DataFrame) -> pd.DataFrame:
    """One row per patient and form: ``patient_id, site_id, form, form_label, n_rows, status,
    reviewed_by, reviewed_at`` (module docstring for the statuses)."""
    ids = patients["patient_id"].astype(str).tolist()
    with engine.connect() as conn:
        prints = form_fingerprints(conn, ids)
        marks = _latest_marks(conn, ids)
    grid = pd.MultiIndex.from_product([ids, list(FORMS)], names=["patient_id", "form"])
    out = pd.DataFrame(index=grid).reset_index()
    out = out.merge(patients[["patient_id", "site_id"]], on="patient_id", how="left")
    out = out.merge(prints, on=["patient_id", "form"], how="left")
    out["n_rows"] = out["n_rows"].fillna(0).astype(int)
    out["max_row_id"] = out["max_row_id"].fillna(0).astype(int)
    out = out.merge(marks, on=["patient_id", "form"], how="left")
    marked = out["reviewed_at"].notna().to_numpy()
    same = (
        (pd.to_numeric(out["marked_rows"]).fillna(-1) == out["n_rows"])
        & (pd.to_numeric(out["marked_max_id"]).fillna(-1) == out["max_row_id"])
    ).to_numpy()
    out["status"] = np.where(
        ~marked,
        ReviewStatus.NOT_REVIEWED.value,
        np.where(same, ReviewStatus.REVIEWED.value, ReviewStatus.NEW_DATA.value),
    )
    out["form_label"] = out["form"].map({k: f.label for k, f in FORMS.items()})
    return out[
        [
            "patient_id",
            "site_id",
            "form",
            "form_label",
            "n_rows",
            "status",
            "reviewed_by",
            "reviewed_role",
            "reviewed_at",
        ]
    ]


def mark_reviewed(
    engine: Engine, actor: Actor, patient_id: str, form: str, *, now: datetime | None = None
) -> int:
    """Mark a patient-form reviewed as of its stored rows now; returns the mark id.

    Audited as ``review_mark`` (target ``<patient>/<form>``, detail: rows and data version).
    """
    require(actor, Action.MARK)
    _check_form(form)
    at = _naive(now)
    with _write(engine) as conn, conn.begin():
        _patient_site(conn, actor, patient_id)
        prints = form_fingerprints(conn, [patient_id])
        row = prints[prints["form"] == form]
        n_rows = int(row["n_rows"].iloc[0]) if len(row) else 0
        max_id = int(row["max_row_id"].iloc[0]) if len(row) else 0
        version = db.dataset_version(conn)
        mark_id = conn.execute(
            db.review_marks.insert().returning(db.review_marks.c.id),
            {
                "patient_id": str(patient_id),
                "form": form,
                "reviewed_by": actor.user,
                "reviewed_role": actor.role,
                "reviewed_at": at,
                "n_rows": n_rows,
                "max_row_id": max_id,
                "dataset_version": version,
            },
        ).scalar_one()
        _audit(
            conn,
            engine,
            user=actor.user,
            role=actor.role,
            action="review_mark",
            target=f"{patient_id}/{form}",
            detail=f"mark={mark_id}; rows={n_rows}; data_version={version}",
            now=at,
        )
    return int(mark_id)


# --- queries ------------------------------------------------------------------------------------

#: columns of :func:`load_queries`
QUERY_COLUMNS: Final = tuple(c.name for c in db.review_queries.columns)


def raise_query(
    engine: Engine,
    actor: Actor,
    *,
    patient_id: str,
    form: str,
    variable: str,
    text: str,
    obs_time: datetime | pd.Timestamp | None = None,
    value: float | None = None,
    now: datetime | None = None,
) -> int:
    """Raise a query on a value (patient, form, variable, time, value); returns its id.

    Audited as ``query_raise`` (target ``query/<id>``)."""
    require(actor, Action.RAISE)
    _check_form(form)
    # a query on a whole organ component (a missing-component issue) names all the form's
    # items ("pao2 / fio2"); an empty variable means the whole form
    whole = " / ".join(FORMS[form].items)
    if variable not in (*FORMS[form].items, whole, ""):
        raise ReviewInputError(
            f"variable {variable!r} is not on form {form!r}; expected one of "
            f"{', '.join(FORMS[form].items)}"
        )
    body = _check_text(text, "query text")
    at = _naive(now)
    when = None if obs_time is None or pd.isna(obs_time) else pd.Timestamp(obs_time).to_pydatetime()
    val = None if value is None or pd.isna(value) else float(value)
    with _write(engine) as conn, conn.begin():
        site = _patient_site(conn, actor, patient_id)
        qid = conn.execute(
            db.review_queries.insert().returning(db.review_queries.c.id),
            {
                "patient_id": str(patient_id),
                "site_id": site,
                "form": form,
                "variable": variable or form,
                "obs_time": when,
                "value": val,
                "text": body,
                "status": QueryStatus.OPEN.value,
                "raised_by": actor.user,
                "raised_role": actor.role,
                "raised_at": at,
            },
        ).scalar_one()
        _audit(
            conn,
            engine,
            user=actor.user,
            role=actor.role,
            action="query_raise",
            target=f"query/{qid}",
            detail=f"patient={patient_id}; form={form}; variable={variable or form}; "
            f"time={when}; value={val}",
            now=at,
        )
    return int(qid)


def _load_query(conn: Connection, actor: Actor, query_id: int) -> Any:
    t = db.review_queries
    row = conn.execute(sa.select(t).where(t.c.id == int(query_id))).first()
    if row is None:
        raise ReviewInputError(f"query {query_id}: no such query")
    if actor.sites is not None and row.site_id not in actor.sites:
        raise ReviewPermissionError(
            f"query {query_id} is on site {row.site_id!r}; user {actor.user!r} may act on sites "
            f"{', '.join(actor.sites) or '(none)'} only"
        )
    return row


def _state_refusal(query_id: int, status: str, step: QueryStep) -> str:
    allowed = " or ".join(sorted(step.from_states))
    article = "an" if allowed[:1] in "aeiou" else "a"
    return (
        f"query {query_id} is {status}; only {article} {allowed} query can be {step.to_state.value}"
    )


def transition_query(
    engine: Engine,
    actor: Actor,
    query_id: int,
    action: Action,
    text: str | None = None,
    *,
    now: datetime | None = None,
) -> None:
    """Move a query one step of :data:`QUERY_STEPS` (``Action.ANSWER`` or ``Action.CLOSE``).

    Refused, writing nothing: a role the step does not allow or a site outside the actor's
    (:class:`ReviewPermissionError`); a missing or wrong text, no such query, a query in
    none of the step's from-states, or one moved meanwhile (:class:`ReviewInputError`).
    Audited as the step's ``audit_action`` (target ``query/<id>``, detail
    ``patient=<id>; status <from> -> <to>``)."""
    step = QUERY_STEPS.get(action)
    if step is None:
        raise ReviewInputError(
            f"{action.value!r} is not a query step; expected one of "
            f"{', '.join(a.value for a in QUERY_STEPS)}"
        )
    require(actor, action)
    body = (text or "").strip()
    if body or step.text_required:
        body = _check_text(body, step.text_label)
    at = _naive(now)
    t = db.review_queries
    with _write(engine) as conn, conn.begin():
        row = _load_query(conn, actor, query_id)
        if row.status not in step.from_states:
            raise ReviewInputError(_state_refusal(query_id, row.status, step))
        values = {
            "status": step.to_state.value,
            f"{step.stamp}_by": actor.user,
            f"{step.stamp}_role": actor.role,
            f"{step.stamp}_at": at,
            step.text_column: body or None,
        }
        # the status in the WHERE: two concurrent writers cannot both move the same query
        done = conn.execute(
            t.update().where(t.c.id == int(query_id), t.c.status == row.status).values(**values)
        ).rowcount
        if done != 1:
            raise ReviewInputError(f"query {query_id} changed meanwhile; reload and try again")
        _audit(
            conn,
            engine,
            user=actor.user,
            role=actor.role,
            action=step.audit_action,
            target=f"query/{query_id}",
            detail=f"patient={row.patient_id}; status {row.status} -> {step.to_state.value}",
            now=at,
        )


def answer_query(
    engine: Engine, actor: Actor, query_id: int, text: str, *, now: datetime | None = None
) -> None:
    """Answer an open query (:func:`transition_query`; audited as ``query_answer``)."""
    transition_query(engine, actor, query_id, Action.ANSWER, text, now=now)


def close_query(
    engine: Engine,
    actor: Actor,
    query_id: int,
    note: str = "",
    *,
    now: datetime | None = None,
) -> None:
    """Close an answered query, optionally with a note (:func:`transition_query`; audited as
    ``query_close``)."""
    transition_query(engine, actor, query_id, Action.CLOSE, note, now=now)


def load_queries(engine: Engine, site_ids: Iterable[str] | None = None) -> pd.DataFrame:
    """Queries (all statuses) of the sites (None: all), newest first."""
    t = db.review_queries
    q = sa.select(t).order_by(t.c.id.desc())
    if site_ids is not None:
        q = q.where(t.c.site_id.in_(list(site_ids)))
    with engine.connect() as conn:
        frame = pd.DataFrame([tuple(r) for r in conn.execute(q).all()], columns=QUERY_COLUMNS)
    for c in ("obs_time", "raised_at", "answered_at", "closed_at"):
        frame[c] = pd.to_datetime(frame[c])
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce").astype("float64")
    return frame
