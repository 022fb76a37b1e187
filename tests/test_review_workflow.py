"""Review marks and queries (core.review.workflow, docs/review.md) on SQLite and PostgreSQL:
the query lifecycle raise -> answer -> close with its audit rows, the role and site refusals
(nothing written), and the review status reset by a real append import."""

from __future__ import annotations

import re
from datetime import datetime
from types import SimpleNamespace

import pandas as pd
import pytest
import sqlalchemy as sa

from core import db
from core.audit import verify_audit_chain
from core.io import import_tables, template_tables
from core.repository import load_audit
from core.review import (
    PERMISSIONS,
    QUERY_STEPS,
    Action,
    Actor,
    ReviewInputError,
    ReviewPermissionError,
    answer_query,
    close_query,
    load_queries,
    mark_reviewed,
    may,
    raise_query,
    review_patients,
    review_status,
    transition_query,
    workflow,
)

P1 = "SYN-S01-0001"
P3 = "SYN-S02-0003"
MONITOR = Actor("mona", "monitor")
DATA_MANAGER = Actor("stan", "statistician")
DSMB = Actor("dora", "dsmb")
CLINICIAN = Actor("cleo", "clinician")
S02_MONITOR = Actor("sam", "monitor", sites=("SYN-S02",))
T0 = datetime(2026, 1, 5, 9, 0)


@pytest.fixture
def engine(any_url):
    eng = db.make_engine(any_url)
    import_tables(eng, template_tables(), user="test")
    yield eng
    eng.dispose()


def _counts(engine) -> tuple[int, int, int]:
    c = db.row_counts(engine)
    with db.audit_engine(engine).connect() as conn:  # the audit trail's own store
        n_audit = conn.execute(sa.select(sa.func.count()).select_from(db.audit_log)).scalar_one()
    return c["review_queries"], c["review_marks"], int(n_audit)


def _raise(engine, actor=MONITOR, **over) -> int:
    args = {
        "patient_id": P1,
        "form": "renal",
        "variable": "creatinine",
        "text": "Creatinine 1.4 mg/dL on day 2: please confirm against the lab report.",
        "obs_time": pd.Timestamp("2024-03-02 11:00"),
        "value": 1.4,
        "now": T0,
    }
    args.update(over)
    return raise_query(engine, actor, **args)


def test_the_permission_table():
    assert may("monitor", Action.RAISE)
    assert not may("monitor", Action.ANSWER)
    assert may("statistician", Action.ANSWER)
    assert may("dsmb", Action.VIEW)
    assert not may("dsmb", Action.RAISE)
    assert not may("dsmb", Action.MARK)
    assert not may("dsmb", Action.CLOSE)
    assert all(not may("clinician", a) for a in Action)
    assert set(PERMISSIONS) == set(Action)


def test_query_lifecycle_raise_answer_close_is_audited(engine):
    qid = _raise(engine)
    q = load_queries(engine).set_index("id").loc[qid]
    assert (q["status"], q["patient_id"], q["site_id"], q["form"], q["variable"]) == (
        "open",
        P1,
        "SYN-S01",
        "renal",
        "creatinine",
    )
    assert q["value"] == 1.4
    assert q["obs_time"] == pd.Timestamp("2024-03-02 11:00")
    assert (q["raised_by"], q["raised_role"], q["raised_at"]) == ("mona", "monitor", T0)

    answer_query(engine, DATA_MANAGER, qid, "Confirmed with the source: 1.4 mg/dL.", now=T0)
    q = load_queries(engine).set_index("id").loc[qid]
    assert (q["status"], q["answer"], q["answered_by"]) == (
        "answered",
        "Confirmed with the source: 1.4 mg/dL.",
        "stan",
    )
    close_query(engine, MONITOR, qid, "Resolved.", now=T0)
    q = load_queries(engine).set_index("id").loc[qid]
    assert (q["status"], q["closed_by"], q["close_note"]) == ("closed", "mona", "Resolved.")

    trail = load_audit(engine).sort_values("id")
    rows = trail[trail["target"] == f"query/{qid}"]
    assert rows[["action", "user", "role"]].values.tolist() == [
        ["query_raise", "mona", "monitor"],
        ["query_answer", "stan", "statistician"],
        ["query_close", "mona", "monitor"],
    ]
    assert "patient=SYN-S01-0001; form=renal; variable=creatinine" in rows["detail"].iloc[0]
    assert rows["detail"].iloc[1].endswith("status open -> answered")
    assert verify_audit_chain(engine) == []


@pytest.mark.parametrize(
    ("actor", "call", "match"),
    [
        (CLINICIAN, "raise", "role 'clinician'.*may not raise a query"),
        (DSMB, "raise", "role 'dsmb'.*may not raise a query"),
        (MONITOR, "answer", "role 'monitor'.*may not answer a query"),
        (DSMB, "mark", "role 'dsmb'.*may not mark reviewed"),
        (S02_MONITOR, "raise", "site 'SYN-S01'.*sites SYN-S02 only"),
        (S02_MONITOR, "mark", "site 'SYN-S01'.*sites SYN-S02 only"),
    ],
)
def test_role_and_site_refusals_write_nothing(engine, actor, call, match):
    qid = _raise(engine)
    before = _counts(engine)
    calls = {
        "raise": lambda: _raise(engine, actor),
        "answer": lambda: answer_query(engine, actor, qid, "An answer."),
        "mark": lambda: mark_reviewed(engine, actor, P1, "renal"),
    }
    with pytest.raises(ReviewPermissionError, match=match):
        calls[call]()
    assert _counts(engine) == before
    assert load_queries(engine).set_index("id").loc[qid, "status"] == "open"


def test_a_site_monitor_acts_on_its_own_site(engine):
    qid = _raise(engine, S02_MONITOR, patient_id=P3, variable="urine_output", value=None)
    assert load_queries(engine, site_ids=["SYN-S02"])["id"].tolist() == [qid]
    assert load_queries(engine, site_ids=["SYN-S01"]).empty
    answer_query(engine, DATA_MANAGER, qid, "Urine output re-entered.")
    with pytest.raises(
        ReviewPermissionError,
        match=rf"query {qid} is on site 'SYN-S02'; user 'x' may act on sites SYN-S01 only",
    ):
        close_query(engine, Actor("x", "monitor", sites=("SYN-S01",)), qid)
    close_query(engine, S02_MONITOR, qid)
    assert load_queries(engine).set_index("id").loc[qid, "status"] == "closed"


def test_state_and_input_refusals_name_what_was_wrong(engine):
    qid = _raise(engine)
    before = _counts(engine)
    with pytest.raises(ReviewInputError, match=f"query {qid} is open; only an answered query"):
        close_query(engine, MONITOR, qid)
    answer_query(engine, DATA_MANAGER, qid, "Checked.")
    with pytest.raises(ReviewInputError, match=f"query {qid} is answered; only an open query"):
        answer_query(engine, DATA_MANAGER, qid, "Again.")
    with pytest.raises(ReviewInputError, match="query 9999: no such query"):
        answer_query(engine, DATA_MANAGER, 9999, "x")
    with pytest.raises(ReviewInputError, match="query text: empty"):
        _raise(engine, text="   ")
    with pytest.raises(ReviewInputError, match="query text: 2001 characters; expected at most"):
        _raise(engine, text="x" * 2001)
    with pytest.raises(ReviewInputError, match="variable 'bilirubin' is not on form 'renal'"):
        _raise(engine, variable="bilirubin")
    with pytest.raises(ReviewInputError, match="form 'vitals': expected one of respiration"):
        _raise(engine, form="vitals")
    with pytest.raises(ReviewInputError, match="patient 'NOPE': no such patient"):
        _raise(engine, patient_id="NOPE")
    # one answer write happened between, nothing else
    assert _counts(engine) == (before[0], before[1], before[2] + 1)


@pytest.mark.parametrize(
    "text",
    [
        "Is this patient on placebo?",
        "Anakinra dose missing",
        "compare with group A",
        "Value odd given the allocation",
        "rhIFN given?",
    ],
)
def test_query_texts_naming_the_allocation_are_refused(engine, text):
    before = _counts(engine)
    with pytest.raises(ReviewInputError, match="blinded monitors"):
        _raise(engine, text=text)
    assert _counts(engine) == before


def test_review_status_resets_when_an_append_import_adds_rows(engine):
    patients = review_patients(engine)
    status = review_status(engine, patients).set_index(["patient_id", "form"])
    assert set(status["status"]) == {"not reviewed"}
    assert status.loc[(P1, "renal"), "n_rows"] == 6  # 3 creatinine + 3 urine output

    mark_reviewed(engine, MONITOR, P1, "renal", now=T0)
    mark_reviewed(engine, MONITOR, P1, "liver", now=T0)
    mark_reviewed(engine, MONITOR, P3, "renal", now=T0)
    status = review_status(engine, patients).set_index(["patient_id", "form"])
    assert status.loc[(P1, "renal"), "status"] == "reviewed"
    assert (status.loc[(P1, "renal"), "reviewed_by"], status.loc[(P1, "renal"), "reviewed_at"]) == (
        "mona",
        pd.Timestamp(T0),
    )

    batch = pd.DataFrame(
        {
            "patient_id": [P1],
            "time": ["2024-03-04 11:00"],
            "variable": ["creatinine"],
            "value": ["1.9"],
            "unit": ["mg/dL"],
            "source": ["lab-feed"],
        }
    )
    result = import_tables(engine, {"observations": batch}, user="test", append=True)
    assert result.status == "imported"
    status = review_status(engine, patients).set_index(["patient_id", "form"])
    assert status.loc[(P1, "renal"), "status"] == "new data since review"
    assert status.loc[(P1, "renal"), "n_rows"] == 7
    assert status.loc[(P1, "liver"), "status"] == "reviewed"  # another form: untouched
    assert status.loc[(P3, "renal"), "status"] == "reviewed"  # another patient: untouched

    # the same batch again is a duplicate: nothing new, the status stays
    import_tables(engine, {"observations": batch}, user="test", append=True)
    assert (
        review_status(engine, patients)
        .set_index(["patient_id", "form"])
        .loc[(P1, "liver"), "status"]
        == "reviewed"
    )

    mark_reviewed(engine, DATA_MANAGER, P1, "renal")
    status = review_status(engine, patients).set_index(["patient_id", "form"])
    assert status.loc[(P1, "renal"), "status"] == "reviewed"
    assert status.loc[(P1, "renal"), "reviewed_by"] == "stan"

    marks = load_audit(engine)
    marks = marks[marks["action"] == "review_mark"].sort_values("id")
    assert marks["target"].tolist() == [f"{P1}/renal", f"{P1}/liver", f"{P3}/renal", f"{P1}/renal"]
    assert "rows=6" in marks["detail"].iloc[0]
    assert "rows=7" in marks["detail"].iloc[3]
    assert verify_audit_chain(engine) == []


def test_schema_6_migration_adds_the_review_tables(engine):
    with engine.begin() as conn:
        db.review_queries.drop(conn)
        db.review_marks.drop(conn)
        # a fresh database records only its creation version: pretend it was created at 5
        conn.execute(
            db.schema_version.update()
            .where(db.schema_version.c.version == db.SCHEMA_VERSION)
            .values(version=5)
        )
    assert db.ensure_schema(engine) == db.SCHEMA_VERSION  # 6 (review tables), then 7
    names = set(sa.inspect(engine).get_table_names())
    assert {"review_marks", "review_queries"} <= names
    assert _raise(engine) >= 1


# --- the query state machine (QUERY_STEPS, transition_query) -----------------------------------

T1 = datetime(2026, 1, 6, 14, 30)
ROLES = ("monitor", "statistician", "dsmb", "demo", "clinician")
#: the docstring's role table for the query steps
STEP_ROLES = {
    Action.ANSWER: {"statistician", "demo"},
    Action.CLOSE: {"monitor", "statistician", "demo"},
}


def _query_in(engine, state: str) -> int:
    qid = _raise(engine)
    if state in ("answered", "closed"):
        answer_query(engine, DATA_MANAGER, qid, "Checked against the lab report.", now=T0)
    if state == "closed":
        close_query(engine, MONITOR, qid, now=T0)
    return qid


def _query(engine, qid: int) -> pd.Series:
    return load_queries(engine).set_index("id").loc[qid]


def test_the_query_step_table():
    assert {
        action: (
            sorted(step.from_states),
            step.to_state.value,
            sorted(step.roles),
            step.audit_action,
            step.text_column,
            step.text_required,
        )
        for action, step in QUERY_STEPS.items()
    } == {
        Action.ANSWER: (
            ["open"],
            "answered",
            ["demo", "statistician"],
            "query_answer",
            "answer",
            True,
        ),
        Action.CLOSE: (
            ["answered"],
            "closed",
            ["demo", "monitor", "statistician"],
            "query_close",
            "close_note",
            False,
        ),
    }
    # one source of truth: the permission table takes the steps' roles
    assert {a: set(PERMISSIONS[a]) for a in QUERY_STEPS} == STEP_ROLES


@pytest.mark.parametrize(
    ("state", "action", "refusal"),
    [
        ("open", Action.ANSWER, None),
        ("open", Action.CLOSE, "query {qid} is open; only an answered query can be closed"),
        ("answered", Action.ANSWER, "query {qid} is answered; only an open query can be answered"),
        ("answered", Action.CLOSE, None),
        ("closed", Action.ANSWER, "query {qid} is closed; only an open query can be answered"),
        ("closed", Action.CLOSE, "query {qid} is closed; only an answered query can be closed"),
    ],
)
def test_every_query_transition_allowed_or_refused(engine, state, action, refusal):
    """Every (state, step) pair: the two allowed moves write the step's stamp, text and audit
    row; the four refused ones name the state and write nothing."""
    qid = _query_in(engine, state)
    before = _counts(engine)

    def move() -> None:
        transition_query(engine, DATA_MANAGER, qid, action, "Source checked.", now=T1)

    if refusal is not None:
        with pytest.raises(ReviewInputError, match=f"^{re.escape(refusal.format(qid=qid))}$"):
            move()
        assert _counts(engine) == before
        assert _query(engine, qid)["status"] == state
        return
    move()
    step = QUERY_STEPS[action]
    q = _query(engine, qid)
    assert (q["status"], q[f"{step.stamp}_by"], q[f"{step.stamp}_role"]) == (
        step.to_state.value,
        "stan",
        "statistician",
    )
    assert q[f"{step.stamp}_at"] == pd.Timestamp(T1)
    assert q[step.text_column] == "Source checked."
    assert _counts(engine) == (before[0], before[1], before[2] + 1)
    last = load_audit(engine).sort_values("id").iloc[-1]
    assert (last["action"], last["user"], last["target"], last["detail"]) == (
        step.audit_action,
        "stan",
        f"query/{qid}",
        f"patient={P1}; status {state} -> {step.to_state.value}",
    )
    assert verify_audit_chain(engine) == []


@pytest.mark.parametrize("action", [Action.ANSWER, Action.CLOSE])
@pytest.mark.parametrize("role", ROLES)
def test_every_role_on_every_query_step(engine, role, action):
    qid = _query_in(engine, "open" if action is Action.ANSWER else "answered")
    step = QUERY_STEPS[action]
    before = _counts(engine)
    actor = Actor("una", role)
    if role in STEP_ROLES[action]:
        transition_query(engine, actor, qid, action, "Done.", now=T1)
        q = _query(engine, qid)
        assert (q["status"], q[f"{step.stamp}_by"], q[f"{step.stamp}_role"]) == (
            step.to_state.value,
            "una",
            role,
        )
        return
    allowed = ", ".join(sorted(STEP_ROLES[action]))
    message = (
        f"role '{role}' (user 'una') may not {action.value}; allowed roles: {allowed} "
        "(docs/review.md)"
    )
    with pytest.raises(ReviewPermissionError, match=f"^{re.escape(message)}$"):
        transition_query(engine, actor, qid, action, "Done.", now=T1)
    assert _counts(engine) == before
    (from_state,) = step.from_states
    assert _query(engine, qid)["status"] == from_state


@pytest.mark.parametrize("action", [Action.ANSWER, Action.CLOSE])
def test_query_step_site_and_existence_refusals(engine, action):
    qid = _query_in(engine, "open" if action is Action.ANSWER else "answered")
    before = _counts(engine)
    s02 = Actor("sam", "statistician", sites=("SYN-S02",))
    with pytest.raises(
        ReviewPermissionError,
        match=rf"^query {qid} is on site 'SYN-S01'; user 'sam' may act on sites SYN-S02 only$",
    ):
        transition_query(engine, s02, qid, action, "Done.")
    with pytest.raises(ReviewInputError, match=r"^query 9999: no such query$"):
        transition_query(engine, DATA_MANAGER, 9999, action, "Done.")
    assert _counts(engine) == before


def test_query_step_texts(engine):
    """The answer is required, the close note optional; both are checked for the allocation."""
    qid = _query_in(engine, "open")
    before = _counts(engine)
    with pytest.raises(ReviewInputError, match=r"^answer: empty; expected a text \(1-2000"):
        transition_query(engine, DATA_MANAGER, qid, Action.ANSWER, "  ")
    with pytest.raises(ReviewInputError, match=r"^answer: 2001 characters; expected at most 2000"):
        transition_query(engine, DATA_MANAGER, qid, Action.ANSWER, "y" * 2001)
    with pytest.raises(ReviewInputError, match=r"^answer: mentions 'placebo'; queries are read"):
        transition_query(engine, DATA_MANAGER, qid, Action.ANSWER, "Was on placebo")
    assert _counts(engine) == before
    transition_query(engine, DATA_MANAGER, qid, Action.ANSWER, "  Re-entered.  ")
    assert _query(engine, qid)["answer"] == "Re-entered."
    with pytest.raises(ReviewInputError, match=r"^close note: mentions 'anakinra'; queries are"):
        transition_query(engine, MONITOR, qid, Action.CLOSE, "ok, anakinra given")
    transition_query(engine, MONITOR, qid, Action.CLOSE, "   ")
    q = _query(engine, qid)
    assert (q["status"], q["close_note"]) == ("closed", None)


def test_only_query_steps_are_transitions(engine):
    qid = _query_in(engine, "open")
    with pytest.raises(
        ReviewInputError,
        match=r"^'raise a query' is not a query step; expected one of answer a query, close a query$",
    ):
        transition_query(engine, DATA_MANAGER, qid, Action.RAISE, "x")


def test_a_query_moved_meanwhile_is_refused(engine, monkeypatch):
    """Two writers: the second one read the query as open, but the first answered it since;
    the status in the UPDATE's WHERE refuses the second write."""
    qid = _query_in(engine, "answered")
    before = _counts(engine)
    real = workflow._load_query

    def stale(conn, actor, query_id):
        row = real(conn, actor, query_id)
        return SimpleNamespace(status="open", patient_id=row.patient_id, site_id=row.site_id)

    monkeypatch.setattr(workflow, "_load_query", stale)
    with pytest.raises(
        ReviewInputError, match=f"^query {qid} changed meanwhile; reload and try again$"
    ):
        answer_query(engine, DATA_MANAGER, qid, "Second answer.")
    assert _counts(engine) == before
    assert _query(engine, qid)["answer"] == "Checked against the lab report."
