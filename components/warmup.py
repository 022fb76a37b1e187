"""The background cache warm-up: an entry point like ``app.py`` (it may import every layer).

After a start (first gunicorn worker) or an import (Data page), :func:`start` runs
``python -m components.warmup`` in its own short-lived process; the pickled ``Settings`` arrive
on stdin, so the secret key is never on a command line or in the environment. That process
precomputes the shared per-patient tables and every panel of :data:`components.cohort.PANELS`
for the unfiltered cohort and each cohort role into the shared cache, then what the cohort page
serves to the roles of this mode (the demo role in demo mode, the login roles otherwise): the
page itself (counts, filter options) and every *rendered* panel
(``components.pages.cohort._panel_json``: the figures cost more than the data; issue 19 found the
demo role's panels missing, docs/performance.md), and the same for the most common filter
change, one immune state (``components.pages.cohort.filter_change``), prints the step timings
as JSON and exits, handing its peak memory back to the OS. One process does it per data version
and rules (an atomic ``cache.add`` is the lock); ``/healthz`` reports :func:`status`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import json
import logging
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from flask import Flask

from components.cohort import PANELS
from components.data import cohort as data
from components.data.cohort import CohortFilters
from components.data.keys import Context
from components.pages import cohort as cohort_page
from components.server.auth import Principal, Role
from components.server.cache import cache
from components.server.context import EXTENSION, bare_app, settings
from settings import PROJECT_ROOT, Settings

log = logging.getLogger(__name__)

#: a warm-up process may run this long before it is stopped (100,000 patients take ~50 s)
TIMEOUT_S = 900
#: the roles whose unfiltered cohort panels are precomputed
COHORT_ROLES = (Role.MONITOR, Role.DSMB, Role.STATISTICIAN)
#: the roles whose cohort page (layout and rendered panels) is precomputed, per mode: in demo
#: mode every visitor is the demo principal (components/server/auth.py ``current_principal``)
PAGE_ROLES = {"demo": (Role.DEMO,), "login": COHORT_ROLES}
#: role-independent tables every panel is cut from
SHARED_LOADERS: dict[str, Callable[[Context], Any]] = {
    "patients": data.cohort_patients,
    "daily": data.cohort_daily,
    "adverse_events": data.cohort_adverse_events,
    "outcomes": data.patient_outcomes,
    "immune_samples": data.immune_samples,
}


def _lock_key(ctx: Context) -> str:
    return f"warmup:{ctx!r}"


def _done_key(ctx: Context) -> str:
    return f"warmed:{ctx!r}"


def warm_up() -> dict[str, float]:
    """Precompute the cohort of the current data version (shared cache), so the first monitor
    after a start or an import does not pay for it. Returns seconds per step ({} when another
    process has it)."""
    shared = Context.current()
    if not cache.add(_lock_key(shared), 1, timeout=3600):
        return {}
    started_all = time.perf_counter()
    timings: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], Any]) -> None:
        started = time.perf_counter()
        fn()
        timings[name] = time.perf_counter() - started

    for name, load in SHARED_LOADERS.items():
        timed(name, lambda load=load: load(shared))
    filters = CohortFilters()
    for role in COHORT_ROLES:
        ctx = shared.for_access(Principal(user="warmup", role=role))
        timed(f"counts:{role.value}", lambda ctx=ctx: data.counts(ctx, filters))
        for panel in PANELS:
            timed(
                f"{panel.key}:{role.value}",
                lambda ctx=ctx, panel=panel: panel.compute(ctx, filters),
            )
    for role in PAGE_ROLES.get(settings().mode, COHORT_ROLES):
        principal = Principal(user="warmup", role=role)
        ctx = shared.for_access(principal)
        timed(f"page:{role.value}", lambda p=principal: cohort_page.build_layout(p, {}))
        for panel in PANELS:
            timed(
                f"render:{panel.key}:{role.value}",
                lambda ctx=ctx, panel=panel: cohort_page.cached_panel(panel.key, ctx, filters),
            )
        # the most common filter change: one immune state (MALS or SIP), the page's filter
        # callbacks and every tab (at 10,000 patients the Primary tab takes ~1 s cold)
        for state in data.PHENOTYPE_STRATA:
            narrowed = CohortFilters.make(phenotype=[state])
            timed(
                f"filter:{state}:{role.value}",
                lambda ctx=ctx, narrowed=narrowed: cohort_page.filter_change(ctx, narrowed),
            )
    timings["total"] = time.perf_counter() - started_all
    cache.set(_done_key(shared), timings, timeout=0)
    release_memory()
    log.info("cache warm-up for %r: %s", shared, {k: round(v, 2) for k, v in timings.items()})
    return timings


def status() -> dict[str, Any]:
    """Whether the cohort of the current data version is precomputed (for ``/healthz``: a load
    balancer or a benchmark can wait for it), with the step timings."""
    timings = cache.get(_done_key(Context.current()))
    if timings is None:
        return {"done": False}
    return {"done": True, "seconds": {k: round(v, 2) for k, v in timings.items()}}


def _libc() -> ctypes.CDLL | None:
    """The C library (ctypes), or None where it cannot be loaded."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def release_memory() -> None:
    """Hand the heap pages freed by a large computation back to the OS (glibc ``malloc_trim``).

    pandas frees its intermediate frames, but glibc keeps the pages in the process heap, so a
    process that once aggregated 100,000 patients would stay at its peak resident size. No-op
    where glibc is not the allocator.
    """
    gc.collect()
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is not None:
        trim(0)


def _stop_with_parent() -> None:
    """In the child, before exec: SIGTERM it when the thread that started it dies (Linux)."""
    pr_set_pdeathsig = 1
    prctl = getattr(_libc(), "prctl", None)
    if prctl is not None:
        prctl(pr_set_pdeathsig, int(signal.SIGTERM))


def start(server: Flask) -> None:
    """Run :func:`warm_up` in its own short-lived process; a daemon thread waits for it and logs
    the outcome; the process is stopped if this worker dies."""
    settings_blob = pickle.dumps(server.extensions[EXTENSION]["settings"])

    def run() -> None:
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "components.warmup"],
                input=settings_blob,
                cwd=PROJECT_ROOT,
                capture_output=True,
                timeout=TIMEOUT_S,
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


def main() -> int:
    settings = pickle.load(sys.stdin.buffer)
    if not isinstance(settings, Settings):
        sys.stderr.write(f"expected pickled Settings on stdin, got {type(settings).__name__}\n")
        return 2
    logging.basicConfig(level=settings.log_level, format="%(levelname)s warm-up: %(message)s")
    with bare_app(settings).app_context():
        timings = warm_up()
    sys.stdout.write(json.dumps({k: round(v, 2) for k, v in timings.items()} or "already warm"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
