"""gunicorn configuration (loaded automatically from the project folder).

Settings come from ``settings.Settings`` (the only environment reader). Workers x threads:
one process per core, 2 threads each: warm requests are short and CPU-bound (cache read, JSON
out), so a second thread hides the cache / database waits, while more threads only add GIL
contention (measured with bench/bench_http.py on 2 cores: 2x2 gave 524 req/s, p99 218 ms;
2x4 gave 514 req/s, p99 256 ms; with the connection cap below, 2x2 gives 520-545 req/s, p99
103-114 ms). ``preload_app`` imports the app (and creates the demo database once) in the
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
# A worker accepts at most this many open connections; the rest wait in the listen backlog
# for a worker with room. Without a cap, one worker that happens to be idle when clients
# connect takes them all and keeps them (keep-alive) while the other idles: bench_http's 32
# clients then got 230-250 req/s in about half of the runs instead of 520-560.
worker_connections = _settings.worker_connections
keepalive = 2  # short: an idle browser connection frees its slot quickly
# recycle workers now and then so a leak can never grow without bound, but rarely: a new
# worker starts with an empty process cache, and while Redis is down it must recompute every
# page it serves (at 5,000 requests a worker was recycled every ~30 s under load, which turned
# a Redis outage into seconds of latency; bench/bench_http.py)
max_requests = 100_000
max_requests_jitter = 10_000
control_socket_disable = True  # gunicorn 27 creates ~/.gunicorn/gunicorn.ctl otherwise
accesslog = "-"
loglevel = _settings.log_level.lower()


def post_worker_init(worker):
    """Warm the shared cache in a background process, started by the first worker only (a
    per-version lock in the shared cache also stops a second process from redoing it)."""
    if worker.age != 1:
        return
    from components import warmup  # deferred import: the config file loads before the app

    warmup.start(worker.wsgi)


def pre_fork(server, worker):
    """Move the preloaded app's objects (Dash, plotly, pandas, scipy...) out of the garbage
    collector's reach before forking: full collections in the workers then scan only what
    requests allocate (shorter pauses), and the shared pages are not dirtied by GC bookkeeping
    (less copy-on-write memory per worker)."""
    import gc

    gc.freeze()
