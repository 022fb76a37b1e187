"""gunicorn configuration (loaded automatically from the project folder).

Settings come from ``settings.Settings`` (the only environment reader). Workers x threads:
one process per core, 2 threads each: warm requests are short and CPU-bound (cache read, JSON
out), so a second thread hides the cache / database waits, while more threads only add GIL
contention (measured with bench/bench_http.py on 2 cores: 2x2 gave 524 req/s, p99 218 ms;
2x4 gave 514 req/s, p99 256 ms). ``preload_app`` imports the app (and creates the demo database once) in the
master before forking, which also shares the imported libraries' memory between workers.
"""

from settings import Settings

_settings = Settings.from_env()

bind = f"{_settings.host}:{_settings.port}"
workers = _settings.workers
threads = _settings.threads
worker_class = "gthread"
preload_app = True
# a cold cohort recomputation takes a few seconds at 10,000 patients and ~15 s at 100,000
# (bench/bench_app.py); the background warm-up runs in its own process, outside this limit
timeout = 60
graceful_timeout = 20
keepalive = 5
max_requests = 5000  # recycle workers slowly so a leak can never grow without bound
max_requests_jitter = 500
control_socket_disable = True  # gunicorn 27 creates ~/.gunicorn/gunicorn.ctl otherwise
accesslog = "-"
loglevel = _settings.log_level.lower()


def post_worker_init(worker):
    """Warm the shared cache in a background process, started by the first worker only (a
    per-version lock in the shared cache also stops a second process from redoing it)."""
    if worker.age != 1:
        return
    from components import services

    services.start_warm_up(worker.wsgi)


def pre_fork(server, worker):
    """Move the preloaded app's objects (Dash, plotly, pandas, scipy...) out of the garbage
    collector's reach before forking: full collections in the workers then scan only what
    requests allocate (shorter pauses), and the shared pages are not dirtied by GC bookkeeping
    (less copy-on-write memory per worker)."""
    import gc

    gc.freeze()
