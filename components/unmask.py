"""DSMB closed session: the recorded, reasoned unmask step from coded groups to real labels,
and the re-mask step back to coded groups (:func:`remask_control`).

Both keep the page: once the server has changed the session and written the audit row, a
clientside callback reloads the browser's current URL (path and query, so the cohort tab and
every filter stay, as the URL holds them), now rendered for the changed session. The server
never builds the URL, so nothing user-controlled becomes a redirect.

Both are written to the audit trail only when they take effect: the session is changed
first; a session that cannot hold the step (header authentication has no session cookie)
is refused with a message and no row; an audit write that fails restores the session before
the error propagates (Flask saves the session of an error response too)."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, clientside_callback, dcc, html, no_update
from flask import session

from components.server.audit import audit
from components.server.auth import Principal, Role, current_principal
from components.server.security import mark_unmasked

MIN_REASON_CHARS = 15


def unmask_control() -> html.Div:
    return html.Div(
        [
            dbc.Button(
                "Unmask groups…", id="unmask-open", size="sm", color="warning", className="ms-2"
            ),
            dbc.Modal(
                [
                    dbc.ModalHeader(dbc.ModalTitle("Unmask the allocation")),
                    dbc.ModalBody(
                        [
                            html.P(
                                "Group A / Group B will be replaced by the real treatment labels for the rest "
                                "of this session. The step and your reason are recorded in the audit trail."
                            ),
                            dbc.Label("Reason (at least 15 characters)", html_for="unmask-reason"),
                            dbc.Textarea(id="unmask-reason", rows=3),
                            html.Div(id="unmask-feedback", className="small text-danger mt-1"),
                        ]
                    ),
                    dbc.ModalFooter(
                        dbc.Button("Unmask and record", id="unmask-confirm", color="danger")
                    ),
                ],
                id="unmask-modal",
                is_open=False,
            ),
            dcc.Store(id="unmask-done"),
            html.Span(id="unmask-done-sink", hidden=True),
        ],
        className="d-inline-block",
    )


@callback(
    Output("unmask-modal", "is_open"), Input("unmask-open", "n_clicks"), prevent_initial_call=True
)
def open_modal(_n: int):
    return True


def remask_control() -> html.Div:
    """For an unmasked DSMB session: back to Group A / Group B (recorded as ``remask``)."""
    return html.Div(
        [
            dbc.Button(
                "Re-mask groups", id="remask-button", size="sm", color="info", className="ms-2"
            ),
            html.Span(id="remask-feedback", className="small text-warning ms-1"),
            dcc.Store(id="remask-done"),
            html.Span(id="remask-done-sink", hidden=True),
        ],
        className="d-inline-block",
    )


#: reload the current URL (tab and filters included) once the step took effect
RELOAD_JS = """
function (done) {
    if (done) { window.location.reload(); }
    return "";
}
"""
for _store in ("unmask-done", "remask-done"):
    clientside_callback(
        RELOAD_JS,
        Output(f"{_store}-sink", "children"),
        Input(_store, "data"),
        prevent_initial_call=True,
    )


@callback(
    Output("unmask-feedback", "children"),
    Output("unmask-done", "data"),
    Input("unmask-confirm", "n_clicks"),
    State("unmask-reason", "value"),
    prevent_initial_call=True,
)
def confirm(_n: int, reason: str | None):

    principal = current_principal()
    if principal.role is not Role.DSMB:
        return "Only the DSMB closed session can unmask.", no_update
    reason = (reason or "").strip()
    if len(reason) < MIN_REASON_CHARS:
        return f"Please give a reason of at least {MIN_REASON_CHARS} characters.", no_update
    if not set_unmasked(True, "unmask", reason[:2000], principal):
        return NO_SESSION_MESSAGE, no_update
    return "", True


@callback(
    Output("remask-feedback", "children"),
    Output("remask-done", "data"),
    Input("remask-button", "n_clicks"),
    prevent_initial_call=True,
)
def remask(_n: int):
    """Back to coded groups on the same page; recorded only when the session changed."""
    principal = current_principal()
    if principal.role is not Role.DSMB or not principal.unmasked:
        return "Nothing to re-mask.", no_update
    if not set_unmasked(False, "remask", None, principal):
        return NO_SESSION_MESSAGE.replace("Unmasking", "Re-masking"), no_update
    return "", True


NO_SESSION_MESSAGE = (
    "Unmasking needs a signed-in session (sign in through the login page); nothing was "
    "unmasked or recorded."
)


def set_unmasked(unmasked: bool, action: str, detail: str | None, principal: Principal) -> bool:
    """Change the session's unmask state and record ``action`` (``unmask`` / ``remask``);
    False (no change, no row) when the request has no session principal to change."""
    before = session.get("principal")
    if not isinstance(before, dict):
        return False
    before = dict(before)
    if unmasked:
        mark_unmasked()
    else:
        session["principal"] = {**before, "unmasked": False}
    try:
        audit(action, "allocation", detail, principal=principal)
    except Exception:
        session["principal"] = before  # the step did not happen: no row, no change
        raise
    return True
