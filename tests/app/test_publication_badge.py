"""The publication badge follows the cohort filters (issue 18), through Dash's HTTP protocol in
login mode on the demo cohort.

The unblinded statistician's badge box is refilled by ``update_publication_badge`` when a filter
changes: one site makes every published row differ (the rows listed, with this dataset's counts
recomputed independently from the analysis frame); clearing the filter gives back what the page
showed on load, whatever the full demo's verdict. Blinded roles and the DSMB's coded view get
an empty box, on load and after a filter change (docs/blinding.md 6.5).
"""

from __future__ import annotations

import json
import re

import pytest

from components.cohort.publication import PUBLISHED
from tests.app import test_blinding as blinding
from tests.app.test_blinding import Crawl, id_key, walk

login_settings = blinding.login_settings
login_app = blinding.login_app

OUTPUT = "cohort-publication.children"
FILTERS = ("site", "country", "phenotype", "infection", "age", "sofa")
ROWS = [p["outcome"] for p in PUBLISHED]


class BadgeSession:
    def __init__(self, login_app, user: str):
        client = login_app.server.test_client()
        blinding.login(client, user)
        self.crawl = Crawl(client)
        self.dep = next(
            d for d in client.get("/_dash-dependencies").get_json() if d["output"] == OUTPUT
        )
        self.page = self.crawl.render("/cohort")

    def box_on_load(self):
        comps = {id_key(c["props"]["id"]): c for c in walk(self.page) if "id" in c["props"]}
        return comps["cohort-publication"]["props"].get("children")

    def site_options(self) -> list[tuple[str, int]]:
        comps = {id_key(c["props"]["id"]): c for c in walk(self.page) if "id" in c["props"]}
        opts = comps["cohort-f-site"]["props"]["options"]
        return [(o["value"], int(re.search(r"\((\d+)\)$", o["label"]).group(1))) for o in opts]

    def filtered(self, **values):
        inputs = [
            {"id": i["id"], "property": i["property"], "value": values.get(i["id"][9:], [])}
            for i in self.dep["inputs"]
        ]
        assert [i["id"] for i in inputs] == [f"cohort-f-{n}" for n in FILTERS]
        resp = self.crawl.call(self.dep, inputs, [], "cohort-f-site.value")
        assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
        return resp.get_json()["response"]["cohort-publication"]["children"]


def badge_text(box) -> str:
    """The data badge's words (the first badge of the box)."""
    badge = next(c for c in walk(box) if c["props"].get("id") == "cohort-badge-data")
    return badge["props"]["children"]


@pytest.fixture(scope="module")
def stat(login_app):
    return BadgeSession(login_app, "stat")


def site_counts(login_app, site: str) -> dict[str, str]:
    """This dataset's arm-level counts at one site, recomputed from the analysis frame (not
    through the tabs the check reads), as "a/b vs c/d"."""
    from components.blinding import groups_for
    from components.data import cohort as cd
    from components.data.keys import Context
    from components.server.auth import Principal, Role

    with login_app.server.test_request_context():
        ctx = Context.current(Principal("stat", Role.STATISTICIAN))
        frame = cd.frame(ctx, cd.CohortFilters.make(site=site))
        treated, control = groups_for(ctx.visibility).labels[:2]
        out = {}
        for name, col in (("Primary (day 9)", "responder_d9"), ("28-day mortality", "died_28")):
            a = frame[frame["group"] == treated][col]
            b = frame[frame["group"] == control][col]
            out[name] = f"{int(a.sum())}/{len(a)} vs {int(b.sum())}/{len(b)}"
        return out


def test_badge001_the_badge_follows_a_site_filter_and_comes_back(login_app, stat):
    on_load = badge_text(stat.box_on_load())
    site = max(stat.site_options(), key=lambda o: o[1])[0]
    one_site = stat.filtered(site=[site])
    text = badge_text(one_site)
    assert (
        text == f"≠ this dataset differs from the published table in 4 of 4 rows: {', '.join(ROWS)}"
    )
    assert text != on_load
    # the tooltip's counts are this site's, recomputed independently
    dumped = json.dumps(one_site)
    for name, counts in site_counts(login_app, site).items():
        assert f"{name}: this dataset {counts}, published " in dumped
    # the statistics-code badge does not follow the filters (it reads the printed counts)
    assert "statistics code reproduces the publication" in dumped
    # cleared: the badge the page showed on load, whatever the full demo's verdict
    cleared = stat.filtered()
    assert badge_text(cleared) == on_load
    assert json.dumps(cleared) == json.dumps(stat.box_on_load())


@pytest.mark.parametrize("user", ["mon", "dsmb", "clin"])
def test_badge002_blinded_and_coded_roles_get_an_empty_box(login_app, user):
    session = BadgeSession(login_app, user)
    assert session.box_on_load() is None
    site = session.site_options()[0][0]
    for values in ({"site": [site]}, {}):
        box = session.filtered(**values)
        assert box is None
    bodies = " ".join(text for _label, text in session.crawl.bodies)
    assert "cohort-badge" not in bodies
    assert "published table" not in bodies
    if user != "dsmb":  # the coded view shows per-group counts by code, never the badge
        assert not re.search(r"46/131|26/145", bodies)
