"""ImmunoSep dashboard: the Dash app and its Flask server (``gunicorn app:server``).

This module wires things together and holds no business logic: settings are read once
(``settings.Settings.from_env``), the cache backend is bound, pages are registered, and the
demo database is created from the seeded synthetic cohort on first start when there is no data.
"""

from __future__ import annotations

import logging
import re
import time

import dash
from dash import Dash
from flask import Flask, Request, Response, jsonify, request
from flask_compress import Compress

from components import api, blinding, shell, unmask, warmup  # noqa: F401 - unmask registers callbacks
from components.pages import audit, cohort, data, not_found, patient, review, ward
from components.server import context, security
from components.server.audit import audit as record_audit
from components.server.auth import ANONYMOUS, NotAuthenticated, current_principal
from components.server.cache import cache
from core.db import ensure_schema, make_engine
from core.io import build_demo_database
from core.repository import ensure_trial_key
from core.stats import import_backends
from settings import APP_VERSION, PROJECT_ROOT, Settings

log = logging.getLogger("immunosep")

PAGES = (ward, patient, cohort, data, review, audit, not_found)

# The pages' @callback functions land in Dash's global callback registry at import, and the
# first Dash app consumes (empties) it. A snapshot taken here lets every app built by
# create_app (tests build several in one process) receive the same callbacks.
_CALLBACK_LIST = tuple(dash._callback.GLOBAL_CALLBACK_LIST)
_CALLBACK_MAP = tuple(dash._callback.GLOBAL_CALLBACK_MAP.items())


def _restore_global_callbacks() -> None:
    dash._callback.GLOBAL_CALLBACK_LIST[:] = list(_CALLBACK_LIST)
    dash._callback.GLOBAL_CALLBACK_MAP.clear()
    dash._callback.GLOBAL_CALLBACK_MAP.update(dict(_CALLBACK_MAP))


_DASH_INTERNAL = re.compile(
    r"^/(_dash-|_reload-hash|_favicon|assets/|healthz|api/|(login|logout|favicon\.ico)$)"
)


#: responses whose bytes depend only on their URL: Dash fingerprints the component suites with
#: the package version and file time, and asset URLs carry ``?m=<file time>``
_STATIC_PREFIXES = ("/_dash-component-suites/", "/assets/")
#: a year: a new build changes the URL (fingerprint or ``?m=``), never the bytes behind one
_IMMUTABLE = "public, max-age=31536000, immutable"


#: Dash's page template with the document language set (screen readers pick the voice from it;
#: axe-core "html-has-lang"); the placeholders are Dash's own
INDEX_STRING = """<!DOCTYPE html>
<html lang="en">
    <head>
        {%metas%}
        <title>{%title%}</title>
        {%favicon%}
        {%css%}
    </head>
    <body>
        {%app_entry%}
        <footer>
            {%config%}
            {%scripts%}
            {%renderer%}
        </footer>
    </body>
</html>"""


def _static_url(req: Request) -> bool:
    if req.path.startswith("/_dash-component-suites/"):
        return True
    return req.path.startswith("/assets/") and "m" in req.args


class _StaticCompressedCache:
    """flask-compress cache backend that keeps the compressed bytes of static URLs only.

    Compressing plotly.min.js (4.8 MB) costs a worker about 0.1 s with brotli and more with
    gzip, so each worker does it once per URL and encoding (a few dozen entries). Layouts and
    callback answers are per user and per request: their key is empty (``"br;"``) and never
    stored (docs/performance.md).
    """

    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}

    def get(self, key: str) -> bytes | None:
        return self._data.get(key)

    def set(self, key: str, value: bytes) -> None:
        if not key.endswith(";"):
            self._data[key] = value


def _compression_cache_key(req: Request) -> str:
    return req.full_path if _static_url(req) else ""


def install_compression(server: Flask) -> None:
    """Brotli (or gzip) for every compressible response: scripts, styles, the index page,
    ``_dash-layout``, ``_dash-dependencies`` and ``_dash-update-component`` answers.

    Must run before ``security.install``: Flask runs ``after_request`` hooks in reverse
    order, so compression then runs last, after the CSP hook has hashed the inline scripts
    of the uncompressed HTML. Fingerprinted static files get a year of browser caching.
    """
    server.config.update(
        COMPRESS_ALGORITHM=["br", "gzip"],
        # Flask serves /assets/ files as streams: brotli or gzip chunk by chunk
        COMPRESS_ALGORITHM_STREAMING=["br", "gzip"],
        COMPRESS_BR_LEVEL=5,
        COMPRESS_LEVEL=6,
        COMPRESS_MIN_SIZE=500,
        COMPRESS_CACHE_BACKEND=_StaticCompressedCache,
        COMPRESS_CACHE_KEY=_compression_cache_key,
    )
    Compress(server)

    @server.after_request
    def long_lived_static(response: Response) -> Response:
        if response.status_code == 200 and _static_url(request):
            response.headers["Cache-Control"] = _IMMUTABLE
        return response


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s"
    )


def bootstrap_data(settings: Settings) -> None:
    """Create the schema, and the demo cohort if the database holds no patients (idempotent)."""
    engine = make_engine(settings.database_url)
    try:
        ensure_schema(engine)
        # the DSMB group coding is stored once, here, before workers fork (never written on a
        # request path in normal operation)
        ensure_trial_key(
            engine,
            blinding.GROUP_CODING_KEY,
            blinding.group_a_seed(settings.secret_key),
        )
        if settings.mode == "demo":
            started = time.perf_counter()
            result = build_demo_database(
                engine,
                seed=settings.demo_seed,
                n_randomised=settings.demo_patients,
                rules=settings.sofa_rules,
                dataset=settings.demo_data,
                enrolment_days=settings.demo_enrolment_days,
            )
            log.info("demo data: %s (%.1f s)", result, time.perf_counter() - started)
    finally:
        engine.dispose()


def _known_page(path: str) -> bool:
    path = path.strip("/")
    for page in dash.page_registry.values():
        if page["module"] == "not_found_404":
            continue
        if path == page["path"].strip("/"):
            return True
        template = (page.get("path_template") or "").strip("/").split("/")
        parts = path.split("/")
        if (
            len(template) > 1
            and len(parts) == len(template)
            and all(
                t == p or (t.startswith("<") and t.endswith(">") and p)
                for t, p in zip(template, parts, strict=True)
            )
        ):
            return True
    return False


def create_app(settings: Settings | None = None, *, bootstrap: bool = True) -> Dash:
    """Build the Dash app for ``settings`` (default: read from the environment once)."""
    settings = settings or Settings.from_env()
    _configure_logging(settings.log_level)
    import_backends()  # before gunicorn forks (--preload): no worker pays for it later
    if bootstrap:
        bootstrap_data(settings)

    _restore_global_callbacks()
    app = Dash(
        __name__,
        use_pages=True,
        pages_folder="",
        assets_folder=str(PROJECT_ROOT / "assets"),
        title="ImmunoSep",
        update_title=None,
        serve_locally=True,
        index_string=INDEX_STRING,
        # Deliberate (docs/conventions.md 8.13 notwithstanding): without this, Dash Pages builds a
        # "validation layout" by calling every page layout during the FIRST request and then
        # sends it to EVERY client in the index page config. With role- and site-dependent
        # layouts that would leak the first user's data to everyone. Callback ids are instead
        # validated server-side by tests/app/test_callback_ids.py.
        suppress_callback_exceptions=True,
    )
    server = app.server
    server.config.update(
        SECRET_KEY=settings.secret_key, MAX_CONTENT_LENGTH=settings.request_max_bytes
    )
    server.extensions[context.EXTENSION] = {"settings": settings}
    cache.init_app(server, config=settings.cache_config())

    for page in PAGES:
        page.register()

    def serve_layout():
        try:
            principal = current_principal()
        except NotAuthenticated:
            # Dash renders the layout once during server setup, outside any user request
            principal = ANONYMOUS
        info = context.dataset_info()
        return shell.build_shell(
            principal=principal,
            synthetic=info.synthetic,
            n_patients=info.n_patients,
            version=info.version,
            login=settings.mode == "login",
            demo_data=info.demo_data,
        )

    app.layout = serve_layout
    install_compression(server)
    security.install(server, settings, csp_script_hashes=list(app.csp_hashes()), audit=record_audit)
    # after the auth gate (before_request hooks run in order): anonymous requests get 401 first
    security.install_callback_guard(server, lambda: app.callback_map)
    api.install(server)

    @server.route("/healthz")
    def healthz() -> Response:
        info = context.dataset_info()
        return jsonify(
            status="ok",
            version=APP_VERSION,
            data_source={
                "kind": settings.database_kind,
                "url": settings.public_database(),
                "dataset_version": info.version,
                "patients": info.n_patients,
                "synthetic": info.synthetic,
                "demo_data": info.demo_data,
            },
            cache=context.cache_backend_status(),
            warm_up=warmup.status(),
            mode=settings.mode,
        )

    @server.after_request
    def not_found_status(response: Response) -> Response:
        """Unknown page paths get a real HTTP 404 (the body is still the app, showing the 404 page)."""
        if (
            request.method == "GET"
            and response.status_code == 200
            and response.mimetype == "text/html"
            and not _DASH_INTERNAL.match(request.path)
            and not _known_page(request.path)
        ):
            response.status_code = 404
        return response

    # Dash registers its component paths and the Pages router lazily, in a before_request
    # hook guarded by a flag that is set BEFORE the work is done: with threaded workers a second
    # request can slip in and get HTTP 500 ("dash is not a registered library"). One request
    # here, in the (pre-fork) master, completes that setup before any worker takes traffic.
    with server.test_client() as client:
        client.get("/healthz")
    return app


def __getattr__(name: str):
    """``app`` and ``server`` are built on first access (``gunicorn app:server`` asks for
    ``server``), so importing this module for ``create_app`` has no side effect."""
    if name in ("app", "server"):
        built = create_app()
        globals().update(app=built, server=built.server)
        return globals()[name]
    raise AttributeError(name)


if __name__ == "__main__":
    _app = create_app()
    _settings = _app.server.extensions[context.EXTENSION]["settings"]
    _app.run(host=_settings.host, port=_settings.port, debug=False)
