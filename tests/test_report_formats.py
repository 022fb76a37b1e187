"""The cohort report in its three formats (HTML, DOCX, PDF) on the synthetic demo cohort.

Figures are rendered by kaleido once per role for the module (about 10 s a role on this
machine); the documents are read back with python-docx and pypdf and compared with the panels
computed independently through the data layer (``Panel.view``). Blinded files must carry the
same chips and guard marks as the HTML report and no arm label (docs/reports.md).
"""

from __future__ import annotations

import base64
import html
import io
import re
from datetime import datetime

import pytest

docx = pytest.importorskip("docx")
pypdf = pytest.importorskip("pypdf")

from components.blinding import GUARDS, HIDDEN, load_groups
from components.cohort import PANELS, report
from components.cohort.publication import PUBLISHED, compare_with_published, dataset_rows
from components.data import cohort as cd
from components.data.keys import Context
from components.pages import cohort
from components.server.auth import ArmVisibility
from components.server.context import dataset_info
from core.io.docx_report import ReportBlock, cell_text
from tests.test_cohort_page import ARM_WORDS, CODED, FULL, NONE
from tests.test_cohort_page import app as cohort_app
from tests.test_cohort_page import demo_db_url as cohort_demo_db_url

#: the module-scoped app of tests/test_cohort_page.py on the session demo database
app = cohort_app
demo_db_url = cohort_demo_db_url

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NOW = datetime(2025, 1, 2, 3, 4, 5)
ROLES = {"full": FULL, "blinded": NONE}


@pytest.fixture(scope="module")
def rendered(app):
    """Per role: the panel views, their PNGs, and the HTML (static, interactive), DOCX, PDF."""
    out = {}
    f = cd.CohortFilters.make()
    with app.server.test_request_context():
        for name, principal in ROLES.items():
            parts = cohort.report_parts(principal, f)
            views = parts[1]
            figures = report.report_figures(views)
            images = cohort.figure_pngs(figures)
            given = {"now": NOW, "parts": parts}
            out[name] = {
                "parts": parts,
                "views": views,
                "figures": figures,
                "images": images,
                "html": cohort.report_html(principal, f, images=images, **given),
                "interactive": cohort.report_html(principal, f, interactive=True, **given),
                "docx": cohort.report_document(principal, f, fmt="docx", images=images, **given),
                "pdf": cohort.report_document(principal, f, fmt="pdf", images=images, **given),
            }
        # the arm labels of the trial, to look for in the blinded files
        groups = load_groups(dataset_info().version, ArmVisibility.FULL)
        out["arm_labels"] = sorted({str(g).lower() for g in groups["group"].dropna()})
    return out


def docx_text(data: bytes) -> tuple[list[str], list[str], list[list[list[str]]]]:
    """(headings, every paragraph, every table as rows of cell texts)."""
    doc = docx.Document(io.BytesIO(data))
    headings = [p.text for p in doc.paragraphs if p.style.name.startswith(("Heading", "Title"))]
    paragraphs = [p.text for p in doc.paragraphs]
    tables = [[[c.text for c in row.cells] for row in t.rows] for t in doc.tables]
    return headings, paragraphs, tables


def pdf_text(data: bytes) -> tuple[str, int]:
    """(the text of every page, whitespace removed: wrapped cells stay comparable; images)."""
    reader = pypdf.PdfReader(io.BytesIO(data))
    text = "".join(page.extract_text() for page in reader.pages)
    return re.sub(r"\s+", "", text), sum(len(page.images) for page in reader.pages)


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def expected_tables(principal) -> list[list[list[str]]]:
    """Every table the report shows, recomputed through the data layer, as cell texts."""
    context = Context.current(principal)
    f = cd.CohortFilters.make()
    tables = []
    for panel in PANELS:
        for section in panel.view(context, f).sections:
            frame = section.csv_frame()
            if frame is None:
                continue
            rows = [[str(c) for c in frame.columns]]
            rows += [[cell_text(v) for v in row] for row in frame.itertuples(False, None)]
            tables.append(rows)
    return tables


def test_rep001_docx_headings_tables_and_figures_equal_the_panels(app, rendered) -> None:
    r = rendered["full"]
    headings, paragraphs, tables = docx_text(r["docx"])
    publication = r["parts"][2]
    assert publication is not None
    blocks = report.report_blocks(r["views"], r["images"], publication)
    assert headings == ["ImmunoSep: cohort report", "Methods", *[b.title for b in blocks]]
    assert blocks[0].title == "Publication check"
    assert [p.label for p in PANELS] == [b.title for b in blocks[1:] if b.level == 1]
    stamp = {row[0]: row[1] for row in tables[0][1:]}
    assert stamp["Blinding mode"] == "Unblinded: treatment allocation shown"
    assert stamp["Patients"] == "276 analysed patients (no filter)"
    assert stamp["Generated"] == "2025-01-02 03:04:05 UTC"
    assert stamp["Publication check"].startswith("reproduces")
    with app.server.test_request_context():
        # tables[1]: this dataset against the published table (test_rep007)
        assert tables[2:] == expected_tables(FULL)
    assert len(tables) > 10
    # the figures are embedded as the PNGs kaleido rendered
    doc = docx.Document(io.BytesIO(r["docx"]))
    assert len(doc.inline_shapes) == len(r["figures"]) > 5
    assert "decrease is > 1.4" in "\n".join(paragraphs)
    # the unblinded report names the arms (so the blinded check below can fail)
    text = " ".join(paragraphs + [c for t in tables for row in t for c in row]).lower()
    assert all(label in text for label in rendered["arm_labels"])


def test_rep002_pdf_headings_table_values_and_figures(app, rendered) -> None:
    r = rendered["full"]
    assert r["pdf"].startswith(b"%PDF-")
    text, n_images = pdf_text(r["pdf"])
    blocks = report.report_blocks(r["views"], r["images"], r["parts"][2])
    for b in blocks:
        assert squash(b.title) in text, b.title
    with app.server.test_request_context():
        tables = expected_tables(FULL)
    # every cell of every table is in the text, in reading order within its table
    for table in tables:
        at = 0
        for cell in (c for row in table for c in row):
            found = text.find(squash(cell), at)
            assert found >= 0, (table[0], cell)
            at = found
    assert n_images == len(r["figures"])


@pytest.mark.parametrize("fmt", ["docx", "pdf"])
def test_rep003_blinded_files_have_the_html_chips_and_no_arm_label(rendered, fmt) -> None:
    r = rendered["blinded"]
    if fmt == "docx":
        _h, paragraphs, tables = docx_text(r["docx"])
        text = squash(" ".join(paragraphs + [c for t in tables for row in t for c in row]))
    else:
        text, _n = pdf_text(r["pdf"])
    lowered = text.lower()
    assert rendered["arm_labels"], "no arm labels to look for"
    assert [w for w in (*ARM_WORDS, *rendered["arm_labels"]) if squash(w) in lowered] == []
    assert "publicationcheck" not in lowered
    # the chips and guard marks of the HTML report, as text
    chips = [c for _l, v in r["views"] for c in v.chips]
    assert chips, "a blinded report without a hidden chip tests nothing"
    for chip in chips:
        assert squash(f"[{HIDDEN}] {chip}") in text
        assert re.sub(r"\s+", "", html.escape(chip)) in squash(r["html"])
    guards = set(re.findall(r"data-guard='([a-z_]+)'", r["html"]))
    assert guards == {"post_baseline_biomarkers", "aesi_by_arm"}
    for guard in guards:
        assert squash(f"Guarded: {GUARDS[guard]}") in text


def test_rep004_html_report_is_static_png_by_default_and_much_smaller(rendered) -> None:
    for name in ROLES:
        r = rendered[name]
        static, interactive = r["html"], r["interactive"]
        assert "plotly.js v" not in static
        assert "<script" not in static
        assert "plotly.js v" in interactive
        pngs = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", static)
        assert len(pngs) == len(r["figures"]) > 5
        assert all(base64.b64decode(p).startswith(PNG_MAGIC) for p in pngs)
        assert [base64.b64decode(p) for p in pngs] == list(r["images"].values())
        # the 5 MB plotly.js bundle is gone: the static report is under 2 MB and less than
        # 40 % of the interactive one
        assert len(interactive) > 4_500_000
        assert len(static) < 2_000_000
        assert len(static) < 0.4 * len(interactive)


def test_rep005_blinded_html_static_report_has_no_arm_label(rendered) -> None:
    lowered = rendered["blinded"]["html"].lower()
    assert [w for w in (*ARM_WORDS, *rendered["arm_labels"]) if w in lowered] == []


def test_rep006_bad_format_and_block_level_are_named(app) -> None:
    with (
        pytest.raises(ValueError, match="report format 'odt': expected 'docx' or 'pdf'"),
        app.server.test_request_context(),
    ):
        cohort.report_document(CODED, cd.CohortFilters.make(), now=NOW, fmt="odt")
    with pytest.raises(ValueError, match="report block 'X': level 3 is not 1 or 2"):
        ReportBlock("X", level=3)


def published_table(principal) -> list[list[str]]:
    """This dataset against the published table, recomputed from the tabs' own values
    (``dataset_rows``) through the pure comparison, with the reports' headers and words."""
    f = cd.CohortFilters.make()
    check = compare_with_published(dataset_rows(Context.current(principal), f))
    rows = [["Published row", "Published", "This dataset", "Result", "Why it differs",
             "Not compared"]]  # fmt: skip
    for r in check.to_dict("records"):
        rows.append(
            [
                r["outcome"],
                r["published"],
                r["dataset"],
                "matches" if r["match"] else "differs",
                cell_text(r["why"]),
                cell_text(r["not_compared"]),
            ]
        )
    return rows


def arm_fractions(principal) -> set[str]:
    """Every arm-level count of the publication check ("46/131", ...): published and this
    dataset's, for the unblinded role."""
    expected = published_table(principal)[1:]
    texts = [r[1].split(";")[0] for r in expected] + [r[2].split(";")[0] for r in expected]
    found = {m for t in texts for m in re.findall(r"\d+/\d+", t)}
    assert {"46/131", "26/145"} <= found
    return found


def test_rep007_unblinded_docx_and_pdf_carry_the_dataset_vs_published_table(app, rendered):
    r = rendered["full"]
    with app.server.test_request_context():
        expected = published_table(FULL)
    assert [row[0] for row in expected[1:]] == [p["outcome"] for p in PUBLISHED]
    _h, paragraphs, tables = docx_text(r["docx"])
    # the table right after the stamp, cell for cell, as the HTML report's
    assert tables[1] == expected
    assert html.escape(expected[1][2]) in r["html"]
    differ = [row[0] for row in expected[1:] if row[3] == "differs"]
    verdict = (
        "This dataset (filters above): reproduces the published table (every row matches)."
        if not differ
        else f"This dataset (filters above): differs from the published table in {len(differ)} "
        f"of 4 rows: {', '.join(differ)}."
    )
    assert verdict in paragraphs
    assert (
        "Statistics code: reproduces the published statistics from the printed counts."
        in paragraphs
    )
    # the PDF: every cell in reading order
    text, _n = pdf_text(r["pdf"])
    at = text.find(squash("This dataset against the published table"))
    assert at >= 0
    for cell in (c for row in expected for c in row):
        found = text.find(squash(cell), at)
        assert found >= 0, cell
        at = found


class AnyFigure(dict):
    """Figure PNGs for any (panel, section) key: one real PNG (the documents' text is tested)."""

    def __init__(self, png: bytes):
        super().__init__()
        self.png = png

    def __missing__(self, key):
        return self.png


@pytest.mark.parametrize("role", ["blinded", "coded"])
def test_rep008_blinded_and_coded_documents_have_no_publication_check(app, rendered, role):
    """No publication check (block, table, stamp row) for a blinded role or the DSMB's coded
    view; the blinded files carry no arm-level count of it (the unblinded file does: rep007)."""
    full_docx = rendered["full"]["docx"]
    with app.server.test_request_context():
        fractions = arm_fractions(FULL)
        if role == "blinded":
            docs = {"docx": rendered["blinded"]["docx"], "pdf": rendered["blinded"]["pdf"]}
        else:
            parts = cohort.report_parts(CODED, cd.CohortFilters.make())
            assert parts[2] is None
            png = next(iter(rendered["full"]["images"].values()))
            docs = {
                fmt: cohort.report_document(
                    CODED, cd.CohortFilters.make(), now=NOW, fmt=fmt, images=AnyFigure(png),
                    parts=parts,
                )
                for fmt in ("docx", "pdf")
            }  # fmt: skip
    full_text = squash(" ".join(t for p in docx_text(full_docx)[1:] for t in _flat(p)))
    assert all(f in full_text for f in fractions)
    for fmt, data in docs.items():
        if fmt == "docx":
            _h, paragraphs, tables = docx_text(data)
            text = squash(" ".join(paragraphs + [c for t in tables for row in t for c in row]))
        else:
            text, _n = pdf_text(data)
        for marker in ("Publication check", "published table", "This dataset", "Published row"):
            assert squash(marker) not in text, (fmt, marker)
        if role == "blinded":
            assert sorted(f for f in fractions if re.search(rf"(?<!\d){f}(?!\d)", text)) == []


def _flat(node) -> list[str]:
    """Strings of a nested list (paragraphs, tables of rows of cells)."""
    if isinstance(node, str):
        return [node]
    return [s for item in node for s in _flat(item)]
