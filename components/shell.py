"""The app shell: navbar, data/blinding banner and the page container."""

from __future__ import annotations

from types import MappingProxyType

import dash
import dash_bootstrap_components as dbc
from dash import dcc, html

from components import ids
from components.data.cohort import visible_patient_count
from components.data.keys import Context
from components.server.auth import ArmVisibility, Principal, Role
from components.unmask import remask_control, unmask_control
from core.review import Action, may

NAV_ITEMS = (
    ("Ward board", "/"),
    ("Patient", "/patient"),
    ("Cohort", "/cohort"),
    ("Data", "/data"),
)


#: banner text of each public demo dataset (components.server.context.DatasetInfo.demo_data)
DEMO_BANNERS = MappingProxyType(
    {
        "synthetic": "DEMO: synthetic data, no real patients",
        "clif-demo": (
            "DEMO: public de-identified ICU data (CLIF demo of MIMIC-IV), not trial participants"
        ),
    }
)


def build_banner(
    *,
    principal: Principal,
    synthetic: bool,
    n_patients: int,
    version: str,
    demo_data: str | None = None,
) -> html.Div:
    """The always-visible strip that says what data these are and what the viewer may see."""
    visibility = principal.arm_visibility
    blinding = {
        ArmVisibility.NONE: "Blinded: treatment allocation hidden",
        ArmVisibility.CODED: "Closed session: allocation shown as coded groups (Group A / Group B)",
        ArmVisibility.FULL: "Unblinded: treatment allocation visible",
    }[visibility]
    parts = []
    demo_data = demo_data or ("synthetic" if synthetic else None)
    if demo_data is not None:
        parts.append(html.Strong(DEMO_BANNERS[demo_data], className="me-3 text-nowrap"))
    parts.append(html.Span(blinding, className="me-3 text-nowrap"))
    parts.append(html.Span(f"Role: {principal.label}", className="me-3 text-nowrap"))
    where = "" if principal.sites is None else " at your sites"
    noun = "patient" if n_patients == 1 else "patients"
    parts.append(
        html.Span(
            [
                f"{n_patients} {noun}{where}, ",
                html.Span(f"data version {version}", className="text-nowrap"),
            ],
            className="text-muted",
        )
    )
    colour = (
        "warning"
        if demo_data is not None
        else ("danger" if visibility is ArmVisibility.FULL else "info")
    )
    return html.Div(
        parts,
        id=ids.BANNER,
        className=f"shell-banner alert alert-{colour} py-1 px-3 mb-0 rounded-0",
    )


def build_navbar(principal: Principal, *, login: bool = False) -> dbc.Navbar:
    items = list(NAV_ITEMS)
    if may(principal.role.value, Action.VIEW):  # the data-quality review (docs/review.md)
        items.append(("Review", "/review"))
    if principal.role is Role.STATISTICIAN:
        items.append(("Audit", "/audit"))
    links = [dbc.NavItem(dbc.NavLink(label, href=href, active="exact")) for label, href in items]
    extras = []
    if principal.role is Role.DSMB:
        extras.append(remask_control() if principal.unmasked else unmask_control())
    if login:
        extras.append(
            html.A("Sign out", href="/logout", className="btn btn-sm btn-outline-light ms-2")
        )
    return dbc.Navbar(
        dbc.Container(
            [
                dbc.NavbarBrand("ImmunoSep", href="/", className="fw-bold"),
                dbc.Nav(links, navbar=True, className="me-auto"),
                html.Span(principal.user, id=ids.PRINCIPAL, className="navbar-text small"),
                *extras,
            ],
            fluid=True,
        ),
        id=ids.NAVBAR,
        color="dark",
        dark=True,
        className="py-1",
    )


def patients_visible(principal: Principal, n_total: int) -> int:
    """The patients the banner counts: all ``n_total`` for a role that sees every site, else
    the stored patients at the principal's sites (a clinician of two sites sees 16, not 276)."""
    if principal.sites is None or n_total == 0:
        return n_total
    return visible_patient_count(Context.current(principal))


def build_shell(
    *,
    principal: Principal,
    synthetic: bool,
    n_patients: int,
    version: str,
    login: bool = False,
    demo_data: str | None = None,
) -> html.Div:
    demo = synthetic or demo_data is not None
    n_patients = patients_visible(principal, n_patients)
    watermark = html.Div("DEMO", className="demo-watermark") if demo else None
    return html.Div(
        [
            dcc.Location(id=ids.URL, refresh="callback-nav"),
            build_navbar(principal, login=login),
            build_banner(
                principal=principal,
                synthetic=synthetic,
                n_patients=n_patients,
                version=version,
                demo_data=demo_data,
            ),
            dbc.Container(dash.page_container, fluid=True, className="pt-3 pb-5"),
            watermark,
        ]
    )
