"""Compression and caching as deployed (gunicorn): every kind of response the browser downloads
is brotli- or gzip-encoded, and fingerprinted static files are cached for a year.

docs/performance.md explains the setup (``app.install_compression``).
"""

from __future__ import annotations

import gzip
import json
import re
import urllib.request
from pathlib import Path

import brotli
import plotly
import pytest
from dash.fingerprint import build_fingerprint

ROUTER_OUTPUT_PREFIX = ".._pages_content.children"


def fetch(
    url: str, *, encoding: str, body: dict | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One request with ``Accept-Encoding: encoding``; the raw (still encoded) bytes."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Accept-Encoding": encoding})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()


def decode(raw: bytes, encoding: str | None) -> bytes:
    if encoding == "br":
        return brotli.decompress(raw)
    if encoding == "gzip":
        return gzip.decompress(raw)
    assert encoding is None, encoding
    return raw


def plotly_url() -> str:
    """The renderer loads plotly.js itself ("eager" async), at the URL Dash fingerprints
    with the plotly package version and the file's time."""
    relative = "package_data/plotly.min.js"
    mtime = int(
        Path(plotly.__file__).with_name("package_data").joinpath("plotly.min.js").stat().st_mtime
    )
    return "/_dash-component-suites/plotly/" + build_fingerprint(
        relative, plotly.__version__, mtime
    )


def index_scripts(live_url: str) -> dict[str, str]:
    """The index page's script and style URLs by a short name (plotly, ag-grid, ...)."""
    _, _, raw = fetch(live_url + "/", encoding="identity")
    html = raw.decode()
    srcs = re.findall(r'(?:src|href)="(/(?:_dash-component-suites|assets)/[^"]+)"', html)
    named = {"plotly.min.js": plotly_url()}
    for src in srcs:
        for key in ("dash_ag_grid", "dash_renderer", "00_bootstrap", "10_app"):
            if key in src and key not in named:
                named[key] = src
    return named


@pytest.fixture(scope="module")
def urls(live_server) -> dict[str, str]:
    named = index_scripts(live_server.url)
    assert set(named) == {
        "plotly.min.js",
        "dash_ag_grid",
        "dash_renderer",
        "00_bootstrap",
        "10_app",
    }
    return named


def router_request(live_url: str, path: str) -> dict:
    deps = json.loads(decode(*_raw_and_encoding(live_url + "/_dash-dependencies")))
    router = next(d for d in deps if d["output"].startswith(ROUTER_OUTPUT_PREFIX))
    outputs = [
        {"id": o.split(".")[0], "property": o.split(".", 1)[1].split("@")[0]}
        for o in router["output"].strip(".").split("...")
    ]
    return {
        "output": router["output"],
        "outputs": outputs,
        "inputs": [
            {
                "id": i["id"],
                "property": i["property"],
                "value": path if i["property"] == "pathname" else "",
            }
            for i in router["inputs"]
        ],
        "state": [],
        "changedPropIds": [f"{router['inputs'][0]['id']}.pathname"],
    }


def _raw_and_encoding(url: str) -> tuple[bytes, str | None]:
    _, headers, raw = fetch(url, encoding="br")
    return raw, headers.get("content-encoding")


@pytest.mark.parametrize("encoding", ["br", "gzip"])
@pytest.mark.parametrize(
    "kind",
    [
        "index",
        "plotly.min.js",
        "dash_ag_grid",
        "dash_renderer",
        "00_bootstrap",
        "10_app",
        "layout",
        "dependencies",
        "callback",
    ],
)
def test_cmp001_every_kind_of_response_is_compressed(live_server, urls, kind, encoding):
    body = None
    if kind == "index":
        url = live_server.url + "/cohort"
    elif kind == "layout":
        url = live_server.url + "/_dash-layout"
    elif kind == "dependencies":
        url = live_server.url + "/_dash-dependencies"
    elif kind == "callback":
        url = live_server.url + "/_dash-update-component"
        body = router_request(live_server.url, "/cohort")
    else:
        url = live_server.url + urls[kind]
    status, headers, raw = fetch(url, encoding=f"{encoding}, identity", body=body)
    assert status == 200
    assert headers.get("content-encoding") == encoding, (kind, headers)
    assert "accept-encoding" in headers.get("vary", "").lower()
    plain = decode(raw, encoding)
    assert len(raw) < len(plain)
    if kind == "callback":
        assert "cohort-tabs" in plain.decode() or "Cohort" in plain.decode()
    if kind == "layout":
        assert "shell-navbar" in plain.decode()


def test_cmp002_plotly_bytes_saved(live_server, urls):
    """plotly.min.js: 4.8 MB plain; brotli (quality 5) saves over 70 %, gzip over 65 %."""
    url = live_server.url + urls["plotly.min.js"]
    _, plain_headers, plain = fetch(url, encoding="identity")
    assert "content-encoding" not in plain_headers
    _, _, br = fetch(url, encoding="br")
    _, _, gz = fetch(url, encoding="gzip")
    assert len(plain) > 4_000_000
    assert decode(br, "br") == plain
    assert decode(gz, "gzip") == plain
    saved_br, saved_gz = 1 - len(br) / len(plain), 1 - len(gz) / len(plain)
    print(
        f"plotly.min.js {len(plain):,} B; br {len(br):,} B ({saved_br:.0%} saved); gzip {len(gz):,} B ({saved_gz:.0%} saved)"
    )
    assert saved_br > 0.70
    assert saved_gz > 0.65
    # a second request is served from the worker's compressed copy: same bytes
    assert fetch(url, encoding="br")[2] == br


@pytest.mark.parametrize("kind", ["plotly.min.js", "dash_ag_grid", "00_bootstrap", "10_app"])
def test_cmp003_fingerprinted_static_files_cached_for_a_year(live_server, urls, kind):
    _, headers, _ = fetch(live_server.url + urls[kind], encoding="br")
    assert headers["cache-control"] == "public, max-age=31536000, immutable"


@pytest.mark.parametrize("path", ["/", "/_dash-layout", "/cohort"])
def test_cmp004_pages_and_data_are_never_cached(live_server, path):
    _, headers, _ = fetch(live_server.url + path, encoding="br")
    assert headers["cache-control"] == "no-store"


def test_cmp005_callback_answers_are_compressed_fresh(live_server):
    """Per-user answers are never served from the static cache: two different pages through
    the same URL (``/_dash-update-component``) come back different."""
    bodies = []
    for path in ("/cohort", "/data"):
        _, headers, raw = fetch(
            live_server.url + "/_dash-update-component",
            encoding="br",
            body=router_request(live_server.url, path),
        )
        assert headers["content-encoding"] == "br"
        bodies.append(decode(raw, "br"))
    assert bodies[0] != bodies[1]
