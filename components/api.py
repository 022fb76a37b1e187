"""A small read-only JSON API for ward systems and tests (``/api/v1/...``).

Role-aware exactly like the pages: the request gate authenticates (HTTP 401 otherwise), site
restriction applies to data, and the allocation appears only as the role's label (real arm,
coded group) or not at all.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from flask import Blueprint, Flask, abort, jsonify

from components import services
from components.auth import current_principal
from components.blinding import arm_labels
from core.endpoints import sofa_response
from core.exceptions import UnknownPatientError
from core.vocab import ORGANS, SOFA_COLUMNS, SOFA_TOTAL


def _clean(value: Any) -> Any:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else value.isoformat()
    if hasattr(value, "item"):
        return _clean(value.item())
    return value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: _clean(v) for k, v in row.items()} for row in frame.to_dict("records")]


def _groups(patient_ids: pd.Series) -> pd.Series | None:
    """Display group per patient for roles that may see one; None for blinded roles."""
    principal = current_principal()
    labels = arm_labels(principal.arm_visibility, services.settings().secret_key)
    if labels is None:
        return None
    from core.repository import load_arms

    arms = load_arms(services.engine()).set_index("patient_id")["arm"]
    return patient_ids.map(arms).map(labels)


def blueprint() -> Blueprint:
    bp = Blueprint("api_v1", __name__, url_prefix="/api/v1")

    @bp.get("/version")
    def version():
        info = services.dataset_info()
        return jsonify(
            dataset_version=info.version, patients=info.n_patients, synthetic=info.synthetic
        )

    @bp.get("/patients")
    def patients():
        principal = current_principal()
        p = services.visible_patients(principal)
        daily = services.cohort_daily()
        last = daily.sort_values("study_day").groupby("patient_id").tail(1).set_index("patient_id")
        out = pd.DataFrame(
            {
                "patient_id": p["patient_id"],
                "site_id": p["site_id"],
                "phenotype": p["phenotype"],
                "death_study_day": p["death_study_day"],
                "last_study_day": p["patient_id"].map(last["study_day"]),
                "latest_sofa_total": p["patient_id"].map(last[SOFA_TOTAL]),
            }
        )
        groups = _groups(out["patient_id"])
        if groups is not None:
            out["group"] = groups.to_numpy()
        return jsonify(patients=_records(out), role=principal.role.value)

    @bp.get("/patients/<patient_id>/sofa")
    def patient_sofa(patient_id: str):
        principal = current_principal()
        try:
            view = services.patient_view(principal, patient_id)
        except UnknownPatientError:
            abort(404)
        cols = ["study_day", *[SOFA_COLUMNS[o] for o in ORGANS], SOFA_TOTAL]
        cols += [f"{o.value}_imputed" for o in ORGANS if f"{o.value}_imputed" in view.daily]
        cols += [f"{o.value}_imputation" for o in ORGANS if f"{o.value}_imputation" in view.daily]
        services.audit("api_patient_sofa", patient_id)
        return jsonify(
            patient_id=patient_id,
            phenotype=view.patient["phenotype"],
            death_study_day=_clean(view.patient.get("death_study_day")),
            days=_records(view.daily[cols]),
            endpoint={k: _clean(v) for k, v in view.endpoint.items()},
        )

    @bp.get("/cohort/summary")
    def cohort_summary():
        principal = current_principal()
        s = services.settings()
        p = services.visible_patients(principal)
        daily = services.cohort_daily()
        daily = daily[daily["patient_id"].isin(p["patient_id"])]
        resp = sofa_response(
            daily,
            p[["patient_id", "death_study_day"]].astype({"death_study_day": "float64"}),
            last_day=s.endpoint_rules.last_day,
            threshold=s.endpoint_rules.threshold,
            death_score=s.endpoint_rules.death_score,
        )
        died28 = p["death_study_day"].astype("Float64").le(28).fillna(False)
        body: dict[str, Any] = {
            "n_patients": len(p),
            "phenotypes": {k: int(v) for k, v in p["phenotype"].value_counts().items()},
            "responders": int(resp["responder"].sum()),
            "responder_fraction": _clean(float(resp["responder"].mean())) if len(resp) else None,
            "deaths_day28": int(died28.sum()),
        }
        groups = _groups(p["patient_id"])
        if groups is not None:
            frame = pd.DataFrame({"group": groups.to_numpy(), "died28": died28.to_numpy()})
            frame["responder"] = (
                p["patient_id"].map(resp.set_index("patient_id")["responder"]).to_numpy()
            )
            body["by_group"] = {
                str(g): {
                    "n_patients": len(f),
                    "responders": int(f["responder"].sum()),
                    "deaths_day28": int(f["died28"].sum()),
                }
                for g, f in sorted(frame.groupby("group"), key=lambda kv: str(kv[0]))
            }
        return jsonify(body)

    return bp


def install(server: Flask) -> None:
    server.register_blueprint(blueprint())
