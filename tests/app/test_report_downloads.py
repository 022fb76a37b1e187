"""The cohort page's DOCX, PDF and ADaM downloads through Dash's real HTTP protocol (login mode,
the demo cohort): what each role receives, and the audit row each download writes.

A blinded monitor gets the report with no arm label and the blinded ADaM export (no arm
variable, no arm label in any file); the unblinded statistician gets the arm (TRT01P equal to
the randomisation table). Kaleido renders the figures of each report download (about 10 s).
"""

from __future__ import annotations

import base64
import io
import json
import re
import zipfile
from pathlib import Path

import pyreadstat
import pytest

from core.repository import load_arms
from core.vocab import ARM_LABELS, Arm
from tests.app import test_audit_trail as trail
from tests.app import test_blinding as blinding
from tests.app.test_cohort_clicks import CohortSession

login_settings = blinding.login_settings
login_app = blinding.login_app
engine = trail.engine

MONITOR_WORDS = "Blinded: pooled and by immune state only"
ARM_VARIABLES = {"ARM", "ARMCD", "ACTARM", "ACTARMCD", "TRT01P", "TRT01PN", "TRT01A", "TRT01AN"}


@pytest.fixture(scope="module")
def arm_labels(engine) -> list[str]:
    """The trial's arm values and their display labels (what no blinded file may contain)."""
    values = {str(a) for a in load_arms(engine)["arm"].dropna()}
    assert len(values) == 2, values
    return sorted(values | {ARM_LABELS[Arm(v)] for v in values})


def click(session: CohortSession, output: str, button_id: str) -> tuple[bytes, str]:
    """Press a download button with the page's current state; (file bytes, file name)."""
    dep = trail.dep_for(session, output)
    comps = session.components()
    button = comps[button_id][0]
    inputs = [session.values(i, comps, (button, 1)) for i in dep["inputs"]]
    state = [session.values(s, comps) for s in dep.get("state", [])]
    answer = session.post(dep, inputs, state, f"{button_id}.n_clicks")
    assert answer.status == 200, answer.body[:300]
    payload = trail.download_of(answer.body)
    assert payload["base64"] is True
    return base64.b64decode(payload["content"]), payload["filename"]


def docx_all_text(data: bytes) -> str:
    import docx

    doc = docx.Document(io.BytesIO(data))
    cells = [c.text for t in doc.tables for row in t.rows for c in row.cells]
    return "\n".join([p.text for p in doc.paragraphs] + cells)


def pdf_all_text(data: bytes) -> str:
    import pypdf

    return "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(data)).pages)


def test_dl001_blinded_docx_and_pdf_downloads_are_audited_and_hold_no_arm(
    login_app, engine, arm_labels
):
    session = CohortSession(trail.logged_in(login_app, "mon"), "mon")
    before = trail.last_id(engine)
    docx_bytes, docx_name = click(
        session, "cohort-report-docx-download.data", "cohort-report-docx-btn"
    )
    pdf_bytes, pdf_name = click(session, "cohort-report-pdf-download.data", "cohort-report-pdf-btn")
    assert re.fullmatch(r"immunosep-cohort-\d{8}T\d{6}\.docx", docx_name)
    assert re.fullmatch(r"immunosep-cohort-\d{8}T\d{6}\.pdf", pdf_name)
    rows = trail.new_rows(engine, before)
    assert rows[["user", "role", "action", "target"]].values.tolist() == [
        ["mon", "monitor", "export", "cohort-report.docx"],
        ["mon", "monitor", "export", "cohort-report.pdf"],
    ]
    detail = f"tab: all panels; filters: none (all patients); blinding: {MONITOR_WORDS}"
    assert rows["detail"].tolist() == [detail, detail]
    for text in (docx_all_text(docx_bytes), re.sub(r"\s+", " ", pdf_all_text(pdf_bytes))):
        assert "ImmunoSep: cohort report" in text
        assert MONITOR_WORDS in text
        assert "hidden: could reveal allocation" in text
        assert [a for a in arm_labels if a.lower() in text.lower()] == []


def adam_files(data: bytes, tmp: Path) -> dict[str, Path]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        zf.extractall(tmp)
        return {name: tmp / name for name in zf.namelist()}


@pytest.mark.parametrize(
    ("user", "role", "with_arm", "label"),
    [
        ("mon", "monitor", False, "ADaM (XPT zip, blinded)"),
        ("stat", "statistician", True, "ADaM (XPT zip)"),
    ],
)
def test_dl002_adam_zip_carries_the_arm_only_for_full_visibility(
    login_app, engine, arm_labels, tmp_path, user, role, with_arm, label
):
    session = CohortSession(trail.logged_in(login_app, user), user)
    assert session.components()["cohort-adam-btn"][0]["props"]["children"] == label
    before = trail.last_id(engine)
    data, name = click(session, "cohort-adam-download.data", "cohort-adam-btn")
    assert re.fullmatch(r"immunosep-adam-xpt-\d{8}T\d{6}\.zip", name)
    files = adam_files(data, tmp_path)
    assert {"adsl.xpt", "adtte.xpt", "adae.xpt", "adlb.xpt", "define.xml"} <= set(files)
    adsl, _meta = pyreadstat.read_xport(str(files["adsl.xpt"]))
    rows = trail.new_rows(engine, before)
    assert rows[["user", "role", "action", "target"]].values.tolist() == [
        [user, role, "export", "adam-xpt.zip"]
    ]
    assert (
        rows["detail"].iloc[0].startswith(f"format: xpt; with arm: {'yes' if with_arm else 'no'}")
    )
    arms = load_arms(engine).set_index("patient_id")["arm"]
    if with_arm:
        got = adsl.set_index("USUBJID")["TRT01P"]
        expected = arms.reindex(got.index).map(lambda v: ARM_LABELS[Arm(v)])
        assert len(got) >= 276
        assert (got == expected).all()
        return
    # blinded: no arm variable in the data or in define.xml, and no dataset names an arm;
    # define.xml names the arms only in the study's design description
    assert ARM_VARIABLES & set(adsl.columns) == set()
    for path in files.values():
        raw = path.read_bytes().lower()
        if path.name == "define.xml":
            define = raw.decode()
            assert "anakinra" in define  # the study description is there, then cut out
            raw = re.sub(r"<studydescription>.*?</studydescription>", "", define).encode()
            oids = set(re.findall(r'itemdef oid="it\.[a-z]+\.([a-z0-9]+)"', raw.decode()))
            assert len(oids) > 50
            assert {v.lower() for v in ARM_VARIABLES} & oids == set()
            assert 'codelist oid="cl.arm' not in raw.decode()
        assert [a for a in arm_labels if a.lower().encode() in raw] == [], path.name


def test_dl003_a_site_restricted_clinician_gets_no_adam_export(login_app, engine):
    """The ADaM zip covers every site: no button for the clinician of one site, and a forged
    click answers without a file and without an audit row."""
    session = CohortSession(trail.logged_in(login_app, "clin"), "clin")
    assert "cohort-adam-btn" not in session.components()
    assert "cohort-report-docx-btn" in session.components()
    dep = trail.dep_for(session, "cohort-adam-download.data")
    before = trail.last_id(engine)
    answer = session.post(
        dep,
        [{"id": "cohort-adam-btn", "property": "n_clicks", "value": 1}],
        [],
        "cohort-adam-btn.n_clicks",
    )
    assert answer.status == 200, answer.body[:300]
    assert json.loads(answer.body)["response"] == {}  # no_update: nothing sent
    assert trail.new_rows(engine, before).empty
