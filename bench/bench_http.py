"""HTTP load benchmark (issue 9): the app under gunicorn on loopback, driven by wrk.

``python -m bench.bench_http [--smoke] [--patients 276] [--seconds 60]`` prints a table and
writes ``bench/results/http.json``. Two runs, each with 32 concurrent connections:

1. filesystem cache (the one-machine default);
2. Redis cache, with the Redis server stopped halfway through the run (no errors allowed).

The request mix is realistic for the dashboard: page loads (the HTML shell and its layout),
patient switches (the patient page rendered by the Pages router callback), day switches on a
patient timeline, ward-board site switches and cohort filter / tab changes; every request is
sent once before the run (a warm cache, as after the background warm-up), then the same mix
runs for 10 s unmeasured, so that every worker has served it (steady state). wrk (Debian package
``wrk``) is the load generator; its Lua script reports p50 / p95 / p99 latency.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.bench_app import callback_body, cohort_slot_body, database

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results" / "http.json"

LUA = r"""
local reqs = {}
local i = 0
init = function(args)
  for line in io.lines(os.getenv("BENCH_REQUESTS")) do
    local method, path, body = line:match("^(%S+)\t(%S+)\t?(.*)$")
    if method == "GET" then
      reqs[#reqs + 1] = wrk.format("GET", path)
    else
      reqs[#reqs + 1] = wrk.format("POST", path, {["Content-Type"] = "application/json"}, body)
    end
  end
  i = math.random(#reqs)
end
request = function()
  i = i % #reqs + 1
  return reqs[i]
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, "read": %d, '
    .. '"write": %d, "status": %d, "timeout": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, '
    .. '"max_us": %d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_wrk() -> str:
    path = shutil.which("wrk")
    if path:
        return path
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "wrk"],
            check=True,
            stdout=subprocess.DEVNULL,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        return shutil.which("wrk") or "wrk"
    raise SystemExit("wrk is needed: apt-get install wrk")


def request_mix(base: str) -> list[str]:
    """Tab-separated request lines (method, path, JSON body) for the Lua script."""
    deps = json.loads(urllib.request.urlopen(base + "/_dash-dependencies", timeout=60).read())

    def body(fragment: str, inputs: dict[str, Any], state: dict[str, Any] | None = None) -> str:
        dep = next(d for d in deps if fragment in d["output"])
        return json.dumps(callback_body(dep, inputs, state), separators=(",", ":"))

    patients = json.loads(urllib.request.urlopen(base + "/api/v1/patients", timeout=120).read())[
        "patients"
    ]
    ids = [p["patient_id"] for p in patients][:40]
    sites = sorted({p["site_id"] for p in patients})[:6]
    lines: list[str] = []
    for path in ("/", "/cohort", "/patient"):
        lines.append(f"GET\t{path}")
    lines.append("GET\t/_dash-layout")
    for pid in ids:  # patient switch: the page render through the router callback
        lines.append(
            "POST\t/_dash-update-component\t"
            + body(
                "_pages_content.children",
                {"_pages_location.pathname": f"/patient/{pid}", "_pages_location.search": ""},
            )
        )
    for k, pid in enumerate(ids[:10]):
        lines.append(
            "POST\t/_dash-update-component\t"
            + body(
                "patient-timeline.figure",
                {"patient-day.value": 1 + k % 9, "patient-layers.value": ["support"]},
                {"patient-id.data": pid},
            )
        )
    for site in sites:
        lines.append(
            "POST\t/_dash-update-component\t"
            + body("ward-grid.rowData", {"ward-site.value": site, "ward-day.value": "latest"})
        )
    for tab in ("primary", "flow", "survival", "safety"):
        for pheno in ([], ["MALS"], ["SIP"]):
            slot = cohort_slot_body(deps, tab, {"phenotype": pheno})
            lines.append(
                "POST\t/_dash-update-component\t" + json.dumps(slot, separators=(",", ":"))
            )
    return lines


def warm(base: str, lines: list[str]) -> int:
    errors = 0
    for line in lines:
        method, path, *rest = line.split("\t")
        req = urllib.request.Request(
            base + path,
            data=rest[0].encode() if rest else None,
            headers={"Content-Type": "application/json"},
            method=method,
        )
        try:
            urllib.request.urlopen(req, timeout=120).read()
        except OSError:
            errors += 1
    return errors


def run(
    *,
    patients: int,
    seconds: int,
    redis_outage: bool,
    connections: int = 32,
    workers: int = 2,
    threads: int = 2,
    stop_redis: bool = True,
) -> dict[str, Any]:
    url, _ = database(patients)
    port = free_port()
    tmp = Path(tempfile.mkdtemp(prefix="bench-http-"))
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "PORT": str(port),
        "CACHE_DIR": str(tmp / "cache"),
        "WEB_CONCURRENCY": str(workers),
        "GUNICORN_THREADS": str(threads),
        "SECRET_KEY": "bench",
        "IMMUNOSEP_MODE": "demo",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("REDIS_URL", None)
    redis_proc = None
    if redis_outage:
        rport = free_port()
        redis_proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(rport),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(tmp),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        env["REDIS_URL"] = f"redis://127.0.0.1:{rport}/0"
        time.sleep(0.5)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "app:server",
            "--config",
            "gunicorn.conf.py",
            "--access-logfile",
            "/dev/null",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp / "server.log").open("w"),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=2).read()
                break
            except OSError:
                time.sleep(0.1)
        # let the background cache warm-up finish before measuring (/healthz reports it)
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            with urllib.request.urlopen(base + "/healthz", timeout=60) as r:
                if json.loads(r.read())["warm_up"]["done"]:
                    break
            time.sleep(0.5)
        lines = request_mix(base)
        # every request served once (the shared cache holds it) ...
        warm_errors = warm(base, lines)
        reqfile = tmp / "requests.tsv"
        reqfile.write_text("\n".join(lines) + "\n")
        script = tmp / "mix.lua"
        script.write_text(LUA)

        def wrk(duration: int) -> dict[str, Any]:
            out = subprocess.run(
                [
                    ensure_wrk(),
                    "-t2",
                    f"-c{connections}",
                    f"-d{duration}s",
                    "--timeout",
                    "10s",
                    "-s",
                    str(script),
                    base,
                ],
                env={**os.environ, "BENCH_REQUESTS": str(reqfile)},
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            return json.loads(
                next(line for line in out.splitlines() if line.startswith("WRKJSON"))[8:]
            )

        # ... then a short unmeasured run of the same concurrent mix, so that every worker has
        # served (and holds in its process cache) what it would after minutes of real use: a
        # single sequential client would be served by one worker only
        pre = wrk(min(10, seconds))
        warm_errors += sum(pre[k] for k in ("connect", "read", "write", "status", "timeout"))
        if redis_proc is not None and stop_redis:

            def stop_redis_halfway() -> None:
                time.sleep(seconds / 2)
                redis_proc.terminate()

            threading.Thread(target=stop_redis_halfway, daemon=True).start()
        stats = wrk(seconds)
        errors = (
            stats["connect"] + stats["read"] + stats["write"] + stats["status"] + stats["timeout"]
        )
        return {
            "patients": patients,
            "cache": "redis (stopped halfway)" if redis_outage else "filesystem",
            "connections": connections,
            "workers": workers,
            "threads": threads,
            "seconds": seconds,
            "distinct_requests": len(lines),
            "warm_errors": warm_errors,
            "requests_per_s": stats["requests"] / (stats["duration_us"] / 1e6),
            "p50_ms": stats["p50_us"] / 1000,
            "p95_ms": stats["p95_us"] / 1000,
            "p99_ms": stats["p99_us"] / 1000,
            "max_ms": stats["max_us"] / 1000,
            "errors": errors,
            "error_detail": {
                k: stats[k] for k in ("connect", "read", "write", "status", "timeout")
            },
        }
    finally:
        server.terminate()
        server.wait(timeout=30)
        if redis_proc is not None and redis_proc.poll() is None:
            redis_proc.terminate()
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="3 s runs (CI)")
    parser.add_argument("--patients", type=int, default=276)
    parser.add_argument("--seconds", type=int, default=60)
    args = parser.parse_args(argv)
    seconds = 3 if args.smoke else args.seconds
    runs = [
        run(patients=args.patients, seconds=seconds, redis_outage=outage)
        for outage in (False, True)
    ]
    print(
        f"{'cache':<26}{'patients':>9}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>8}"
        "  target: >= 300 req/s, p99 <= 250 ms, 0 errors"
    )
    for r in runs:
        print(
            f"{r['cache']:<26}{r['patients']:>9}{r['requests_per_s']:>9.0f}{r['p50_ms']:>9.1f}"
            f"{r['p95_ms']:>9.1f}{r['p99_ms']:>9.1f}{r['errors']:>8}"
        )
    res = {"machine": platform.platform(), "cpus": os.cpu_count(), "runs": runs}
    out = RESULTS.with_suffix(".smoke.json") if args.smoke else RESULTS
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
