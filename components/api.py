"""A small JSON API for ward systems and tests (``/api/v1/...``): read-only, except
``POST /api/v1/fhir`` (one FHIR R4 Bundle imported all or nothing, docs/formats.md "FHIR R4").

Role-aware exactly like the pages: the request gate authenticates (HTTP 401 otherwise), site
restriction applies to data, and the allocation appears only as the role's label (real arm,
coded group) or not at all. Only the roles of ``INGEST_ROLES`` may import (HTTP 403 otherwise).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from flask import Blueprint, Flask, abort, jsonify, request
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule

from components.data.cohort import CohortFilters, analysis_frame
from components.data.keys import Context
from components.data.patient import patient_view
from components.data.ward import board_at, clock_now
from components.server.audit import audit
from components.server.auth import current_principal, demo_data_problems, ingest_refusal
from components.server.context import dataset_info, engine, settings
from core.exceptions import DataValidationError, UnknownPatientError
from core.io.fhir import parse_bundles
from core.io.load import import_tables
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


DEFAULT_PAGE = 1000
MAX_PAGE = 10_000
#: content types of ``POST /api/v1/fhir`` (a JSON body also keeps cross-site forms out: a
#: browser sends it cross-origin only after a CORS preflight, which this server never grants)
FHIR_MEDIA_TYPES = ("application/fhir+json", "application/json")
PROBLEM_FIELDS = ("where", "row", "column", "value", "expected", "patient_id", "time")


def _problem_records(exc: DataValidationError) -> list[dict[str, Any]]:
    out = []
    for record in exc.records():
        row = {k: _clean(record.get(k)) for k in PROBLEM_FIELDS}
        if not isinstance(row["value"], str | int | float | bool | None):
            row["value"] = str(row["value"])
        out.append(row)
    return out


def _int_arg(name: str, default: int, lo: int, hi: int | None) -> int:
    """An integer query parameter within [lo, hi]; HTTP 400 naming it otherwise."""
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < lo or (hi is not None and value > hi):
        bound = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        abort(400, description=f"query parameter {name!r} must be an integer {bound}, got {raw!r}")
    return value


def _cohort(principal) -> pd.DataFrame:
    """The principal's patients with per-patient outcomes (the cohort page's memoized
    analysis frame: site restriction applied, ``group`` only for roles that may see one)."""
    return analysis_frame(Context.current(principal), CohortFilters())


def _time_arg(name: str) -> pd.Timestamp | None:
    """An ISO 8601 date-time query parameter as naive UTC; HTTP 400 naming it otherwise."""
    raw = request.args.get(name)
    if not raw:
        return None
    try:
        ts = pd.Timestamp(raw)
    except (ValueError, TypeError):
        ts = None
    if ts is None or pd.isna(ts):
        abort(400, description=f"{name}={raw!r}: expected an ISO 8601 date-time")
    return ts.tz_convert("UTC").tz_localize(None) if ts.tz is not None else ts


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ERROR_REF}}}


ERROR_REF = {"$ref": "#/components/schemas/Error"}
NULLABLE_INT = {"type": ["integer", "null"]}
NULLABLE_NUMBER = {"type": ["number", "null"]}
NULLABLE_STRING = {"type": ["string", "null"]}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 description of every ``/api/v1`` route, served at
    ``/api/v1/openapi.json``: kept here, beside the routes, and held true by
    ``tests/test_fuzz_api.py`` (schemathesis calls every route with generated requests and
    checks each answer's status, content type and body against this document; a test also
    checks that every route of the blueprint is described and nothing else). docs/api.md.

    A fresh dict per call (no shared mutable state)."""
    common = {
        "401": _error("no valid session (login mode)"),
        "429": _error("too many requests"),
    }
    patient_row = {
        "type": "object",
        "required": ["patient_id", "site_id", "phenotype"],
        "properties": {
            "patient_id": {"type": "string"},
            "site_id": {"type": "string"},
            "phenotype": NULLABLE_STRING,
            "death_study_day": NULLABLE_NUMBER,
            "last_study_day": NULLABLE_NUMBER,
            "latest_sofa_total": NULLABLE_NUMBER,
            "group": {"type": "string", "description": "only for roles that may see one"},
        },
    }
    problem = {
        "type": "object",
        "required": ["where", "expected"],
        "properties": {
            "where": {"type": "string"},
            "row": NULLABLE_INT,
            "column": NULLABLE_STRING,
            "value": {"type": ["string", "number", "integer", "boolean", "null"]},
            "expected": {"type": "string"},
            "patient_id": NULLABLE_STRING,
            "time": NULLABLE_STRING,
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ImmunoSep dashboard API",
            "version": "1",
            "description": (
                "Read-only, role-aware JSON API (POST /fhir imports). Login mode: a session "
                "cookie from /login or the proxy's user header; blinded roles never get an "
                "arm. docs/api.md"
            ),
        },
        "servers": [{"url": "/api/v1"}],
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "string"}},
                },
                "PatientRow": patient_row,
                "Bundle": {
                    "type": "object",
                    "description": "a FHIR R4 Bundle (docs/formats.md 'FHIR R4')",
                    "required": ["resourceType"],
                    "properties": {
                        "resourceType": {"const": "Bundle"},
                        "type": {"type": "string"},
                        "entry": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {"resource": {"type": "object"}},
                            },
                        },
                    },
                },
                "Problem": problem,
            },
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "immunosep_session"}
            },
        },
        "security": [{"session": []}],
        "paths": {
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "this description (public: it holds no data)",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "the OpenAPI 3.1 document",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        **common,
                    },
                }
            },
            "/version": {
                "get": {
                    "operationId": "version",
                    "summary": "dataset version, patient count, synthetic flag",
                    "responses": {
                        "200": {
                            "description": "the loaded dataset",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["dataset_version", "patients", "synthetic"],
                                        "properties": {
                                            "dataset_version": {"type": "string"},
                                            "patients": {"type": "integer", "minimum": 0},
                                            "synthetic": {"type": "boolean"},
                                        },
                                    }
                                }
                            },
                        },
                        **common,
                    },
                }
            },
            "/patients": {
                "get": {
                    "operationId": "patients",
                    "summary": "the visible patients, one page",
                    "parameters": [
                        {
                            "name": "offset",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 0},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "one page of patients",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": [
                                            "patients",
                                            "role",
                                            "total",
                                            "offset",
                                            "limit",
                                            "next_offset",
                                        ],
                                        "properties": {
                                            "patients": {
                                                "type": "array",
                                                "items": {
                                                    "$ref": "#/components/schemas/PatientRow"
                                                },
                                            },
                                            "role": {"type": "string"},
                                            "total": {"type": "integer", "minimum": 0},
                                            "offset": {"type": "integer", "minimum": 0},
                                            "limit": {"type": "integer", "minimum": 1},
                                            "next_offset": NULLABLE_INT,
                                        },
                                    }
                                }
                            },
                        },
                        "400": _error("offset or limit out of range or not an integer"),
                        **common,
                    },
                }
            },
            "/patients/{patient_id}/sofa": {
                "get": {
                    "operationId": "patient_sofa",
                    "summary": "daily SOFA with components, imputation flags, the endpoint",
                    "parameters": [
                        {
                            "name": "patient_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "minLength": 1},
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "the patient's daily SOFA",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["patient_id", "days", "endpoint"],
                                        "properties": {
                                            "patient_id": {"type": "string"},
                                            "phenotype": NULLABLE_STRING,
                                            "death_study_day": NULLABLE_NUMBER,
                                            "days": {"type": "array", "items": {"type": "object"}},
                                            "endpoint": {"type": "object"},
                                        },
                                    }
                                }
                            },
                        },
                        "404": _error("unknown patient, or outside the user's sites"),
                        **common,
                    },
                }
            },
            "/ward": {
                "get": {
                    "operationId": "ward",
                    "summary": "the patients in the ICU at a time, with SOFA over 24 h",
                    "parameters": [
                        {"name": "site", "in": "query", "schema": {"type": "string"}},
                        {
                            "name": "at",
                            "in": "query",
                            "schema": {"type": "string", "format": "date-time"},
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "the ward board",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["at", "site", "n_patients", "patients"],
                                        "properties": {
                                            "at": {"type": "string"},
                                            "site": NULLABLE_STRING,
                                            "n_patients": {"type": "integer", "minimum": 0},
                                            "patients": {
                                                "type": "array",
                                                "items": {"type": "object"},
                                            },
                                        },
                                    }
                                }
                            },
                        },
                        "400": _error("at is not an ISO 8601 date-time"),
                        "404": _error("a site outside the user's sites"),
                        **common,
                    },
                }
            },
            "/cohort/summary": {
                "get": {
                    "operationId": "cohort_summary",
                    "summary": "counts, phenotypes, responders, day-28 deaths",
                    "responses": {
                        "200": {
                            "description": "the summary (by_group only for roles that may see it)",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": [
                                            "n_patients",
                                            "phenotypes",
                                            "responders",
                                            "deaths_day28",
                                        ],
                                        "properties": {
                                            "n_patients": {"type": "integer", "minimum": 0},
                                            "phenotypes": {
                                                "type": "object",
                                                "additionalProperties": {"type": "integer"},
                                            },
                                            "responders": {"type": "integer", "minimum": 0},
                                            "responder_fraction": NULLABLE_NUMBER,
                                            "deaths_day28": {"type": "integer", "minimum": 0},
                                            "by_group": {"type": "object"},
                                        },
                                    }
                                }
                            },
                        },
                        **common,
                    },
                }
            },
            "/fhir": {
                "post": {
                    "operationId": "fhir_ingest",
                    "summary": "import one FHIR R4 Bundle, all or nothing",
                    "requestBody": {
                        "required": True,
                        "content": {
                            media: {"schema": {"$ref": "#/components/schemas/Bundle"}}
                            for media in FHIR_MEDIA_TYPES
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "imported (or already imported)",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["status", "dataset_version"],
                                        "properties": {
                                            "status": {"type": "string"},
                                            "dataset_version": {"type": "string"},
                                        },
                                    }
                                }
                            },
                        },
                        "400": {
                            "description": "refused, with every problem",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["status", "problems"],
                                        "properties": {
                                            "status": {"const": "refused"},
                                            "problems": {
                                                "type": "array",
                                                "items": {"$ref": "#/components/schemas/Problem"},
                                            },
                                        },
                                    }
                                }
                            },
                        },
                        "403": _error("the role may not import, or a read-only demo"),
                        "413": _error("body above the upload limit"),
                        "415": _error("not a JSON body"),
                        **common,
                    },
                }
            },
        },
    }


def blueprint() -> Blueprint:
    bp = Blueprint("api_v1", __name__, url_prefix="/api/v1")

    @bp.get("/openapi.json")
    def openapi():
        """The OpenAPI 3.1 description of this API (:func:`openapi_document`)."""
        return jsonify(openapi_document())

    @bp.errorhandler(400)
    def bad_request(exc):
        return jsonify(error=exc.description), 400

    @bp.errorhandler(404)
    def not_found(exc):
        return jsonify(error="not found (unknown, or outside your sites)"), 404

    @bp.errorhandler(413)
    def too_large(exc):
        return jsonify(error=f"request body above {settings().upload_max_bytes} bytes"), 413

    @bp.post("/fhir")
    def fhir_ingest():
        """Import one FHIR R4 Bundle (JSON body), all or nothing: 200 with the import result,
        400 with every problem (where, row, column, value, expected), 403 for a role that may
        not import (or a read-only demo), 413 above ``Settings.upload_max_bytes``, 415 for a
        body that is not JSON."""
        principal = current_principal()
        refusal = ingest_refusal(principal, settings())
        if refusal is not None:
            audit("api_fhir_refused", None, refusal)
            return jsonify(error=refusal), 403
        max_bytes = settings().upload_max_bytes
        if request.mimetype not in FHIR_MEDIA_TYPES:
            return jsonify(
                error=f"Content-Type {request.mimetype or 'missing'!r}; expected "
                + " or ".join(FHIR_MEDIA_TYPES)
            ), 415
        if (request.content_length or 0) > max_bytes:
            abort(413)
        body = request.get_data(cache=False)
        if len(body) > max_bytes:
            abort(413)
        parsed = parse_bundles([("request body", body)])
        try:
            problems = [*parsed.problems, *demo_data_problems(parsed.tables, settings())]
            if problems:
                raise DataValidationError(problems)
            result = import_tables(
                engine(), parsed.tables, user=principal.user, rules=settings().sofa_rules
            )
        except DataValidationError as exc:
            audit("api_fhir", "bundle", f"refused: {len(exc.problems)} problem(s)")
            return jsonify(status="refused", problems=_problem_records(exc)), 400
        rows = sum(result.inserted.values())
        audit(
            "api_fhir",
            "bundle",
            f"{result.status}: {rows} rows, dataset version {result.dataset_version}",
        )
        # no cache warm-up here (the architecture allows it from the Data page only): the
        # cache is keyed by the dataset version, so the next request computes afresh
        return jsonify(
            status=result.status,
            import_id=result.import_id,
            dataset_version=result.dataset_version,
            content_sha256=result.content_sha256,
            inserted=dict(result.inserted),
            skipped=dict(result.skipped),
            not_imported=dict(parsed.skipped),
            n_patients_recomputed=result.n_patients_recomputed,
        )

    @bp.get("/version")
    def version():
        info = dataset_info()
        return jsonify(
            dataset_version=info.version, patients=info.n_patients, synthetic=info.synthetic
        )

    @bp.get("/patients")
    def patients():
        """The principal's patients, one page at a time (``?offset=0&limit=1000``; at most
        :data:`MAX_PAGE`): 100,000 rows as one JSON document would cost every client and the
        serving worker hundreds of MB."""
        principal = current_principal()
        offset = _int_arg("offset", 0, 0, None)
        limit = _int_arg("limit", DEFAULT_PAGE, 1, MAX_PAGE)
        frame = _cohort(principal)
        total = len(frame)
        frame = frame.iloc[offset : offset + limit]
        cols = [
            "patient_id",
            "site_id",
            "phenotype",
            "death_study_day",
            "last_study_day",
            "latest_sofa_total",
        ]
        out = frame[cols + (["group"] if "group" in frame.columns else [])]
        following = offset + limit
        audit(
            "api_patients",
            "patients",
            f"offset={offset} limit={limit} rows={len(out)} of {total}; "
            f"blinding: {principal.arm_visibility.value}",
            principal=principal,
        )
        return jsonify(
            patients=_records(out),
            role=principal.role.value,
            total=total,
            offset=offset,
            limit=limit,
            next_offset=following if following < total else None,
        )

    @bp.get("/patients/<patient_id>/sofa")
    def patient_sofa(patient_id: str):
        principal = current_principal()
        try:
            view = patient_view(Context.current(principal), patient_id)
        except UnknownPatientError:
            abort(404)
        cols = ["study_day", *[SOFA_COLUMNS[o] for o in ORGANS], SOFA_TOTAL]
        cols += [f"{o.value}_imputed" for o in ORGANS if f"{o.value}_imputed" in view.daily]
        cols += [f"{o.value}_imputation" for o in ORGANS if f"{o.value}_imputation" in view.daily]
        audit("api_patient_sofa", patient_id)
        return jsonify(
            patient_id=patient_id,
            phenotype=view.patient["phenotype"],
            death_study_day=_clean(view.patient.get("death_study_day")),
            days=_records(view.daily[cols]),
            endpoint={k: _clean(v) for k, v in view.endpoint.items()},
        )

    @bp.get("/ward")
    def ward():
        """The ward board at a clock time (``?at=`` ISO 8601, UTC if no offset; default: the
        ward's now, IMMUNOSEP_CLOCK): the patients in the ICU then, alive, in the user's sites
        (``?site=`` one of them), with SOFA over the 24 h before ``at``. Never the arm."""
        principal = current_principal()
        ctx = Context.current(principal)
        site = request.args.get("site") or None
        if site is not None and principal.sites is not None and site not in principal.sites:
            abort(404)
        # "now" to the minute: one cached board per minute, not one per request
        at = _time_arg("at") or clock_now(ctx).floor("min")
        board = board_at(ctx, at, site)
        audit("api_ward", site or "all sites", f"at={at.isoformat()}")
        rows = []
        for r in _records(board):
            r["alerts"] = list(r["alerts"] or ())
            r["data_quality"] = list(r.pop("data_flags") or ())
            rows.append(r)
        return jsonify(at=at.isoformat(), site=site, n_patients=len(rows), patients=rows)

    @bp.get("/cohort/summary")
    def cohort_summary():
        principal = current_principal()
        p = _cohort(principal)
        body: dict[str, Any] = {
            "n_patients": len(p),
            "phenotypes": {k: int(v) for k, v in p["phenotype"].value_counts().items()},
            "responders": int(p["responder_d9"].sum()),
            "responder_fraction": _clean(float(p["responder_d9"].mean())) if len(p) else None,
            "deaths_day28": int(p["died_28"].sum()),
        }
        if "group" in p.columns:
            body["by_group"] = {
                str(g): {
                    "n_patients": len(f),
                    "responders": int(f["responder_d9"].sum()),
                    "deaths_day28": int(f["died_28"].sum()),
                }
                for g, f in sorted(p.groupby("group"), key=lambda kv: str(kv[0]))
            }
        return jsonify(body)

    return bp


def install(server: Flask) -> None:
    """Register the API, and JSON answers for every other path under ``/api/``: an unknown
    path is a 404 and a known path with another method a 405, never the dashboard's HTML
    (issue 17: they answered 200 with the app shell)."""
    server.register_blueprint(blueprint())

    # the API's own rules, to tell a wrong method (405) from an unknown path (404)
    api_rules = Map(
        [
            Rule(r.rule, methods=r.methods, endpoint=r.endpoint)
            for r in server.url_map.iter_rules()
            if r.endpoint.startswith("api_v1.")
        ]
    )

    @server.route("/api", methods=ALL_METHODS)
    @server.route("/api/", methods=ALL_METHODS)
    @server.route("/api/<path:rest>", methods=ALL_METHODS)
    def api_not_found(rest: str = ""):
        try:
            api_rules.bind("api").match(request.path, method=request.method)
        except MethodNotAllowed as exc:
            resp = jsonify(error=f"{request.method} is not allowed on {request.path}")
            resp.status_code = 405
            resp.headers["Allow"] = ", ".join(sorted(exc.valid_methods or ()))
            return resp
        except NotFound:
            pass
        return jsonify(error=f"no API route {request.path!r}; see /api/v1/openapi.json"), 404


ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
