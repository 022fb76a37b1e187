"""A two-level flask-caching backend: a small in-process LRU in front of the shared cache.

Why it is safe: every memoized computation is keyed by the dataset version, the rules key and
the access scope, so a key never changes meaning; an entry in one worker's LRU is exactly the
entry in Redis. Values are kept pickled, so a caller that mutates what it got can never alter
what the next request gets (the same guarantee the shared cache gives).

Values are pickled once, here: the shared backend stores the pickled bytes (its own pickling of
a bytes object is a copy), so a 50 MB cohort table is serialised once per set, not twice.

Why it is there: a hot entry costs an unpickle instead of a Redis round trip or a file read,
and when Redis goes away the hot entries keep being served while misses are recomputed (and
the outage is logged, at most once every 30 s per process). ``add`` (used as a cross-process
lock) goes to the shared level only.
"""

from __future__ import annotations

import logging
import pickle
import threading
import time
from collections import OrderedDict
from typing import Any

from flask_caching import Cache
from flask_caching.backends import FileSystemCache, RedisCache
from flask_caching.backends.base import BaseCache
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

log = logging.getLogger(__name__)

LOCAL_MAX_BYTES = 96 * 1024 * 1024  # per process
LOCAL_MAX_ITEM_BYTES = 16 * 1024 * 1024  # larger values live only in the shared cache
LOG_EVERY_S = 30.0
#: after a shared-backend error, skip it for this long (circuit breaker): an unreachable Redis
#: then costs nothing per request instead of a connection attempt per cache operation
RETRY_AFTER_S = 2.0
#: what a shared backend raises when it is down or unreachable (Redis, or the file system)
SHARED_ERRORS = (RedisError, OSError, EOFError)


class TwoLevelCache(BaseCache):
    def __init__(
        self, shared: BaseCache, *, default_timeout: int = 300, max_bytes: int = LOCAL_MAX_BYTES
    ):
        super().__init__(default_timeout=default_timeout)
        self.shared = shared
        self.max_bytes = max_bytes
        self._local: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._last_error_log = 0.0
        self._down_until = 0.0
        self.shared_errors = 0

    # -- flask-caching factory -----------------------------------------------------------------
    @classmethod
    def factory(cls, app, config, args, kwargs):
        if config.get("CACHE_REDIS_URL"):
            config = dict(config)
            # no client-side retries with backoff: a down Redis must fail fast (the breaker
            # below then skips it), never stall a request for seconds
            config["CACHE_OPTIONS"] = {
                **(config.get("CACHE_OPTIONS") or {}),
                "retry": Retry(NoBackoff(), 0),
            }
            kwargs = {k: v for k, v in kwargs.items() if k != "retry"}
            shared = RedisCache.factory(app, config, list(args), kwargs)
        else:
            shared = FileSystemCache.factory(app, dict(config), list(args), dict(kwargs))
        return cls(shared, default_timeout=config.get("CACHE_DEFAULT_TIMEOUT", 300))

    # -- helpers -------------------------------------------------------------------------------
    def _shared_up(self) -> bool:
        return time.monotonic() >= self._down_until

    def _shared_failed(self, op: str, exc: Exception) -> None:
        self.shared_errors += 1
        now = time.monotonic()
        self._down_until = now + RETRY_AFTER_S
        if now - self._last_error_log >= LOG_EVERY_S:
            self._last_error_log = now
            log.error(
                "shared cache backend unavailable (%s: %s); serving from the process "
                "cache or recomputing (%d errors so far)",
                op,
                type(exc).__name__,
                self.shared_errors,
            )

    def _local_blob(self, key: str) -> bytes | None:
        with self._lock:
            item = self._local.get(key)
            if item is None:
                return None
            expires, blob = item
            if expires and expires < time.time():
                self._drop(key)
                return None
            self._local.move_to_end(key)
        return blob

    def _drop(self, key: str) -> None:
        _, blob = self._local.pop(key)
        self._bytes -= len(blob)

    def _local_set(self, key: str, blob: bytes, timeout: int | None) -> None:
        if len(blob) > LOCAL_MAX_ITEM_BYTES:
            return
        expires = (
            time.time() + self._normalize_timeout(timeout)
            if self._normalize_timeout(timeout)
            else 0.0
        )
        with self._lock:
            if key in self._local:
                self._drop(key)
            self._local[key] = (expires, blob)
            self._bytes += len(blob)
            while self._bytes > self.max_bytes and self._local:
                self._drop(next(iter(self._local)))

    # -- cachelib API --------------------------------------------------------------------------
    def get(self, key: str) -> Any:
        blob = self._local_blob(key)
        if blob is None and self._shared_up():
            try:
                blob = self.shared.get(key)
            except SHARED_ERRORS as exc:  # the shared backend is down: behave as a miss
                self._shared_failed("get", exc)
                return None
            if blob is not None and not isinstance(blob, bytes):
                return blob  # written by a build that stored plain values: still valid
            if blob is not None:
                self._local_set(key, blob, None)
        return None if blob is None else pickle.loads(blob)

    def get_many(self, *keys: str) -> list[Any]:
        return [self.get(k) for k in keys]

    def set(self, key: str, value: Any, timeout: int | None = None) -> bool:
        blob = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        self._local_set(key, blob, timeout)
        if not self._shared_up():
            return True  # kept in the process cache
        try:
            return bool(self.shared.set(key, blob, timeout=timeout))
        except SHARED_ERRORS as exc:
            self._shared_failed("set", exc)
            return True  # kept in the process cache

    def set_many(self, mapping: dict[str, Any], timeout: int | None = None) -> list[Any]:
        return [k for k, v in mapping.items() if self.set(k, v, timeout)]

    def add(self, key: str, value: Any, timeout: int | None = None) -> bool:
        """Shared only: callers use it as a lock across processes."""
        if not self._shared_up():
            return False
        try:
            blob = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
            return bool(self.shared.add(key, blob, timeout=timeout))
        except SHARED_ERRORS as exc:
            self._shared_failed("add", exc)
            return False

    def has(self, key: str) -> bool:
        return self.get(key) is not None

    def delete(self, key: str) -> bool:
        with self._lock:
            if key in self._local:
                self._drop(key)
        try:
            return bool(self.shared.delete(key))
        except SHARED_ERRORS as exc:
            self._shared_failed("delete", exc)
            return False

    def delete_many(self, *keys: str) -> list[Any]:
        return [k for k in keys if self.delete(k)]

    def clear(self) -> bool:
        with self._lock:
            self._local.clear()
            self._bytes = 0
        try:
            return bool(self.shared.clear())
        except SHARED_ERRORS as exc:
            self._shared_failed("clear", exc)
            return False


#: the flask-caching front object: bound to the Flask server by ``app.create_app`` (or
#: :func:`components.server.context.bare_app`) with ``init_app``. Every memoized function of
#: the data and cohort layers hangs on it; the key is built from the function's arguments
#: (a :class:`components.data.keys.Context` carries version, rules and access).
cache = Cache()
