"""Service layer between the pages and ``core``: engine, dataset version, cached computations.

Callbacks stay thin: they call these functions, which call ``core`` and memoize the result in
the shared flask-caching backend (Redis or the filesystem, so every gunicorn worker sees it).
Every cache key carries the dataset version, the rules key and, where the answer depends on the
role, the principal's scope, so an import or a rule change can never serve a stale entry and a
blinded request can never be served an unblinded one.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from flask import current_app, has_app_context
from flask_caching import Cache
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from components.auth import ArmVisibility, Principal
from settings import Settings

log = logging.getLogger(__name__)

#: flask-caching front object; bound to the Flask server in app.create_app (init_app)
cache = Cache()

EXTENSION = "immunosep"


def settings() -> Settings:
    return current_app.extensions[EXTENSION]["settings"]


def engine() -> Engine:
    """The SQLAlchemy engine of this process (re-created after a fork, never shared)."""
    ext = current_app.extensions[EXTENSION]
    pid = os.getpid()
    if ext.get("engine_pid") != pid:
        from core.db import make_engine

        ext["engine"] = make_engine(ext["settings"].database_url)
        ext["engine_pid"] = pid
    return ext["engine"]


@dataclass(frozen=True)
class DatasetInfo:
    version: str
    n_patients: int
    synthetic: bool
    ready: bool


@cache.memoize()
def _dataset_counts(version: str) -> tuple[int, bool]:
    """(patients, synthetic?) of one dataset version (memoized: versions never change)."""
    with engine().connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM patients")).scalar_one()
        n_real = conn.execute(
            text("SELECT count(*) FROM patients WHERE patient_id NOT LIKE 'SYN-%'")
        ).scalar_one()
    return int(n), n > 0 and n_real == 0


def dataset_info() -> DatasetInfo:
    """Version, size and provenance of the loaded data.

    One single-row query per call (the version); the counts are memoized per version, so
    every request sees the current version and an import is visible at once on every worker.
    """
    from flask import g, has_request_context

    if has_request_context() and "dataset_info" in g:
        return g.dataset_info  # one version per request: consistent and cheap
    eng = engine()
    ext = current_app.extensions[EXTENSION]
    if not ext.get("schema_ready"):
        if not inspect(eng).has_table("patients"):
            return DatasetInfo(version="empty", n_patients=0, synthetic=False, ready=False)
        ext["schema_ready"] = True
    from core.db import dataset_version

    version = dataset_version(eng)
    n, synthetic = _dataset_counts(version)
    info = DatasetInfo(version=version, n_patients=n, synthetic=synthetic, ready=n > 0)
    if has_request_context():
        g.dataset_info = info
    return info


def cache_backend_status() -> dict[str, Any]:
    """Which cache backend is configured and whether it answers."""
    s = settings()
    status: dict[str, Any] = {"backend": s.cache_backend}
    if s.redis_url:
        try:
            backend = getattr(cache.cache, "shared", cache.cache)  # behind the process LRU
            backend._write_client.ping()  # RedisCache exposes the redis client
            status["ok"] = True
        except Exception as exc:  # noqa: BLE001 - report, never fail the health check
            status["ok"] = False
            status["error"] = type(exc).__name__
    else:
        status["ok"] = True
        status["dir"] = s.cache_dir
    return status


def audit(
    action: str,
    target: str | None = None,
    detail: str | None = None,
    *,
    principal: Principal | None = None,
) -> None:
    """Append an audit-trail row for the current (or given) principal."""
    from components.auth import current_principal
    from core.repository import record_audit

    if principal is None:
        try:
            principal = current_principal()
        except PermissionError:
            principal = None
    record_audit(
        engine(),
        user=principal.user if principal else "anonymous",
        role=principal.role.value if principal else "none",
        action=action,
        target=target,
        detail=detail,
    )


def warm_up() -> dict[str, float]:
    """Precompute the cohort aggregates of the current data version (shared cache), so the
    first monitor after a start or an import does not pay for them. Returns seconds per step.
    Only one process does it per version (an atomic cache.add acts as the lock)."""
    import time

    from components import cohort_data
    from components.auth import Principal, Role

    version = dataset_info().version
    if not cache.add(f"warmup:{version}:{settings().sofa_rules.key()}", 1, timeout=3600):
        return {}
    started_all = time.perf_counter()
    timings: dict[str, float] = {}
    for name, fn in (
        ("patients", cohort_patients),
        ("daily", cohort_daily),
        ("adverse_events", cohort_adverse_events),
    ):
        started = time.perf_counter()
        fn()
        timings[name] = time.perf_counter() - started
    for role in (Role.MONITOR, Role.DSMB, Role.STATISTICIAN):
        started = time.perf_counter()
        cohort_data.warm(Principal(user="warmup", role=role))
        timings[f"cohort:{role.value}"] = time.perf_counter() - started
    timings["total"] = time.perf_counter() - started_all
    cache.set(_warmed_key(version), timings, timeout=0)
    release_memory()
    log.info("cache warm-up for %s: %s", version, {k: round(v, 2) for k, v in timings.items()})
    return timings


def _warmed_key(version: str) -> str:
    return f"warmed:{version}:{settings().sofa_rules.key()}:{settings().phenotype_thresholds.key()}"


def warm_up_status() -> dict[str, Any]:
    """Whether the cohort aggregates of the current data version are precomputed (for
    ``/healthz``: a load balancer or a benchmark can wait for it), with the step timings."""
    version = dataset_info().version
    timings = cache.get(_warmed_key(version))
    if timings is None:
        return {"done": False}
    return {"done": True, "seconds": {k: round(v, 2) for k, v in timings.items()}}


def _libc():
    """The C library (ctypes), or None where it cannot be loaded."""
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def release_memory() -> None:
    """Hand the heap pages freed by a large computation back to the OS (glibc ``malloc_trim``).

    pandas frees its intermediate frames, but glibc keeps the pages in the process heap, so a
    worker that once aggregated 100,000 patients would stay at its peak resident size. No-op
    where glibc is not the allocator.
    """
    import gc

    gc.collect()
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is not None:
        trim(0)


def bare_app(settings: Settings):
    """A Flask app with only the settings and the cache bound: what the service functions
    need outside the Dash front end (the warm-up process, scripts)."""
    from flask import Flask

    server = Flask("immunosep-services")
    server.extensions[EXTENSION] = {"settings": settings}
    cache.init_app(server, config=settings.cache_config())
    return server


#: a warm-up process may run this long before it is stopped (100,000 patients take ~50 s)
WARM_UP_TIMEOUT_S = 900


def start_warm_up(server) -> None:
    """Run :func:`warm_up` in its own short-lived process (``python -m components.warmup``).

    The aggregation of a large cohort peaks at several hundred MB; in a separate process
    that memory is returned when it exits, so serving workers stay small. The results land
    in the shared cache, where every worker finds them. A daemon thread waits for the
    process and logs the outcome; the process is stopped if this worker dies.
    """
    import pickle
    import subprocess
    import sys
    import threading

    from settings import PROJECT_ROOT

    settings_blob = pickle.dumps(server.extensions[EXTENSION]["settings"])

    def run() -> None:
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "components.warmup"],
                input=settings_blob,
                cwd=PROJECT_ROOT,
                capture_output=True,
                timeout=WARM_UP_TIMEOUT_S,
                preexec_fn=_stop_with_parent,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            log.exception("cache warm-up process failed to run")
            return
        if proc.returncode != 0:
            log.error(
                "cache warm-up process exited with %s: %s",
                proc.returncode,
                proc.stderr.decode(errors="replace")[-2000:],
            )
        else:
            log.info("cache warm-up: %s", proc.stdout.decode(errors="replace").strip())

    threading.Thread(target=run, name="cache-warm-up", daemon=True).start()


def _stop_with_parent() -> None:
    """In the child, before exec: SIGTERM it when the thread that started it dies (Linux)."""
    import signal

    pr_set_pdeathsig = 1
    prctl = getattr(_libc(), "prctl", None)
    if prctl is not None:
        prctl(pr_set_pdeathsig, int(signal.SIGTERM))


def in_app() -> bool:
    return has_app_context() and EXTENSION in current_app.extensions


# --------------------------------------------------------------------------------------------
# Cached computations. Arguments are plain hashable values: flask-caching builds the key from
# them, so the dataset version, the rules key and the role scope are always part of the key.
# --------------------------------------------------------------------------------------------


@cache.memoize()
def _cohort_patients(version: str, thresholds_key: str) -> pd.DataFrame:
    from core.phenotype import classify_frame
    from core.repository import load_data_cutoff, load_patients

    patients = load_patients(engine())
    classes = classify_frame(patients, thresholds=settings().phenotype_thresholds)
    out = pd.concat([patients, classes], axis=1)
    cutoff = load_data_cutoff(engine())
    window = pd.Timedelta(hours=24 * settings().endpoint_rules.last_day)
    out["endpoint_window_closed"] = (
        (out["anchor_time"] + window <= cutoff) if cutoff is not None else False
    )
    return out


@cache.memoize()
def _cohort_daily(version: str, rules_key: str) -> pd.DataFrame:
    from core.repository import load_cohort_daily

    return load_cohort_daily(engine(), rules_key=rules_key)


def cohort_patients() -> pd.DataFrame:
    """All patients with baseline phenotype (no arm). A copy: callers may not mutate the cache."""
    s = settings()
    return _cohort_patients(dataset_info().version, s.phenotype_thresholds.key()).copy()


def cohort_daily() -> pd.DataFrame:
    """The whole cohort's compact daily SOFA (``core.repository.COHORT_DAILY_COLUMNS``:
    patient, study day, total, number of imputed components). Pages that need components or
    inputs load them per patient or per site."""
    s = settings()
    return _cohort_daily(dataset_info().version, s.sofa_rules.key()).copy()


@cache.memoize()
def _cohort_adverse_events(version: str) -> pd.DataFrame:
    from core.repository import load_adverse_events

    return load_adverse_events(engine())


def cohort_adverse_events() -> pd.DataFrame:
    """All adverse events (no arm; role-independent), memoized per data version. A copy."""
    return _cohort_adverse_events(dataset_info().version).copy()


def visible_patients(principal: Principal) -> pd.DataFrame:
    """Patients the principal may see (site restriction applies to data, not only to menus)."""
    p = cohort_patients()
    if principal.sites is not None:
        p = p[p["site_id"].isin(principal.sites)]
    return p.reset_index(drop=True)


def site_options(principal: Principal) -> list[dict[str, str]]:
    p = visible_patients(principal)
    counts = p.groupby("site_id").size()
    return [{"label": f"{site} ({n} patients)", "value": site} for site, n in counts.items()]


@cache.memoize()
def _ward(
    version: str, rules_key: str, scope: str, site_id: str, as_of_day: int | None
) -> pd.DataFrame:
    from core.repository import load_daily_sofa
    from core.ward import ward_snapshot

    patients = cohort_patients()
    patients = patients[patients["site_id"] == site_id]
    daily = load_daily_sofa(engine(), rules_key=rules_key, site_id=site_id)
    carry = patients[
        [
            "patient_id",
            "site_id",
            "death_study_day",
            "phenotype",
            "phenotype_reason",
            "near_threshold",
        ]
    ]
    return ward_snapshot(daily, carry, as_of_day=as_of_day, rules=settings().endpoint_rules)


def ward_board(principal: Principal, site_id: str, as_of_day: int | None) -> pd.DataFrame:
    """Ward rows for one site as of a study day; empty when the site is not the principal's."""
    if principal.sites is not None and site_id not in principal.sites:
        return pd.DataFrame()
    s = settings()
    return _ward(
        dataset_info().version, s.sofa_rules.key(), principal.scope, site_id, as_of_day
    ).copy()


@dataclass(frozen=True)
class PatientView:
    """Everything the patient page shows, computed for one principal (never the arm)."""

    patient: dict[str, Any]
    daily: pd.DataFrame
    provenance: pd.DataFrame
    lanes: pd.DataFrame
    biomarkers: pd.DataFrame
    biomarkers_hidden_after_baseline: bool
    endpoint: dict[str, Any]


@cache.memoize()
def _patient_view(
    version: str, rules_key: str, scope: str, patient_id: str, post_baseline_biomarkers: bool
) -> PatientView:
    from components.figures import support_segments
    from core.endpoints import sofa_response
    from core.exceptions import UnknownPatientError
    from core.phenotype import classify_frame
    from core.repository import load_daily_sofa, load_patient_raw, load_provenance

    s = settings()
    patients = cohort_patients()
    match = patients[patients["patient_id"] == patient_id]
    if match.empty:
        raise UnknownPatientError(patient_id)
    patient = match.iloc[0].to_dict()
    raw = load_patient_raw(engine(), patient_id)
    daily = load_daily_sofa(engine(), rules_key=rules_key, patient_ids=[patient_id])
    prov = load_provenance(engine(), patient_id, rules_key=rules_key)
    anchor = pd.Timestamp(patient["anchor_time"])
    lanes = support_segments(
        raw.infusions,
        raw.episodes,
        raw.doses,
        anchor_time=anchor,
        max_day=s.sofa_rules.max_study_day,
    )
    bio = raw.biomarkers.copy()
    bio["study_day"] = np.floor((bio["time"] - anchor) / pd.Timedelta(hours=24)) + 1
    bio = pd.concat([bio, classify_frame(bio, thresholds=s.phenotype_thresholds)], axis=1)
    hidden = False
    if not post_baseline_biomarkers and len(bio) > 1:
        bio = bio.iloc[:1]
        hidden = True
    endpoint: dict[str, Any] = {"evaluable": False}
    if len(daily):
        death = patient.get("death_study_day")
        resp = sofa_response(
            daily,
            pd.DataFrame(
                {
                    "patient_id": [patient_id],
                    "death_study_day": [np.nan if pd.isna(death) else float(death)],
                }
            ),
            last_day=s.endpoint_rules.last_day,
            threshold=s.endpoint_rules.threshold,
            death_score=s.endpoint_rules.death_score,
        )
        endpoint = resp.iloc[0].to_dict()
        endpoint["evaluable"] = True
    return PatientView(
        patient=patient,
        daily=daily,
        provenance=prov,
        lanes=lanes,
        biomarkers=bio,
        biomarkers_hidden_after_baseline=hidden,
        endpoint=endpoint,
    )


def check_patient_access(principal: Principal, patient_id: str) -> None:
    """Raise UnknownPatientError unless the patient exists and is in the principal's sites
    (one indexed row read; the same error for both, so ids elsewhere cannot be probed)."""
    from core.exceptions import UnknownPatientError
    from core.repository import load_patient_site

    site = load_patient_site(engine(), patient_id)
    if site is None or (principal.sites is not None and site not in principal.sites):
        raise UnknownPatientError(patient_id)


def patient_view(principal: Principal, patient_id: str) -> PatientView:
    """The patient page's data for this principal.

    Raises UnknownPatientError for an unknown id AND for a patient outside the principal's
    sites (the same message: a restricted user cannot probe which ids exist elsewhere).
    """
    check_patient_access(principal, patient_id)
    s = settings()
    return _patient_view(
        dataset_info().version,
        s.sofa_rules.key(),
        principal.scope,
        patient_id,
        principal.arm_visibility is not ArmVisibility.NONE,
    )
