"""A two-level flask-caching backend: a small in-process LRU in front of the shared cache.

Why it cannot execute (issue 16): the shared backend (Redis, or the cache folder) is writable by
more than this app, and a pickle runs code when it is loaded. Every blob this class writes there
is ``MAC || pickle`` where MAC = HMAC-SHA256(key derived from the app's SECRET_KEY, cache key ||
pickle); a read checks the MAC with ``hmac.compare_digest`` BEFORE anything is unpickled, and a
blob that fails (forged, truncated, written under another key, or by a build without MACs) is a
miss: never unpickled, counted in ``mac_failures``, logged once per key. The backends' own
serialisers (cachelib pickles values too, and unpickles what it reads) are replaced by
:class:`RawRedisSerializer` / :class:`RawFileSerializer`, which store and return the bytes as they
are and never call pickle: the shared level only ever holds and hands back the MAC'd bytes.

Why it is safe: every memoized computation is keyed by the dataset version, the rules key and
the access scope, so a key never changes meaning; an entry in one worker's LRU is exactly the
entry in Redis. Values are kept pickled, so a caller that mutates what it got can never alter
what the next request gets (the same guarantee the shared cache gives).

Values are pickled once, here: the shared backend stores the MAC'd pickled bytes as they are
(its serialiser is replaced by a raw one), so a 50 MB cohort table is serialised once per set.
The process LRU keeps the verified pickled bytes (process memory is trusted).

Why it is there: a hot entry costs an unpickle instead of a Redis round trip or a file read,
and when Redis goes away the hot entries keep being served while misses are recomputed (and
the outage is logged, at most once every 30 s per process). ``add`` (used as a cross-process
lock) goes to the shared level only.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import pickle
import secrets
import threading
import time
from collections import OrderedDict
from typing import Any

from cachelib.serializers import BaseRedisSerializer, BaseSerializer
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
#: bytes of the MAC prepended to every shared blob (HMAC-SHA256)
MAC_BYTES = 32
#: the label the cache key is derived under (never the session signing key itself)
MAC_KEY_LABEL = b"immunosep-cache"
#: at most this many distinct keys are remembered as already logged (bounded memory)
MAX_LOGGED_KEYS = 1024


def derive_mac_key(secret: str | bytes) -> bytes:
    """The cache MAC key: HMAC-SHA256(SECRET_KEY, "immunosep-cache") (a one-step HKDF extract),
    so a leak of the cache key never reveals the session signing key."""
    if not secret:
        raise ValueError("the shared cache needs the app's SECRET_KEY to authenticate its values")
    raw = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(raw, MAC_KEY_LABEL, hashlib.sha256).digest()


class RawRedisSerializer(BaseRedisSerializer):
    """Stores bytes as they are and returns what Redis holds as bytes: never pickles, never
    unpickles (cachelib's default unpickles any value starting with ``!``)."""

    def dumps(self, value: Any, protocol: int = pickle.HIGHEST_PROTOCOL) -> bytes:
        if type(value) is int:
            return str(value).encode("ascii")  # cachelib's inc/dec convention (unused here)
        if not isinstance(value, bytes):
            raise TypeError("the shared cache stores MAC'd bytes only")
        return value

    def loads(self, value: bytes | None) -> Any:
        return value


class RawFileSerializer(BaseSerializer):
    """The cache folder's files hold a tag and raw bytes, never a pickle: ``B`` + bytes for
    values, ``I`` + decimal digits for cachelib's file counter."""

    def dump(self, value: Any, f, protocol: int = pickle.HIGHEST_PROTOCOL) -> None:
        if type(value) is int:
            f.write(b"I" + str(value).encode("ascii"))
        elif isinstance(value, bytes):
            f.write(b"B" + value)
        else:
            raise TypeError("the shared cache stores MAC'd bytes only")

    def load(self, f) -> Any:
        data = f.read()
        if data[:1] == b"B":
            return data[1:]
        if data[:1] == b"I":
            try:
                return int(data[1:])
            except ValueError:
                return None
        return None  # anything else (a pickle written by someone) is a miss, never loaded

    def dumps(self, value: Any, protocol: int = pickle.HIGHEST_PROTOCOL) -> bytes | None:
        if not isinstance(value, bytes):
            raise TypeError("the shared cache stores MAC'd bytes only")
        return value

    def loads(self, bvalue: bytes) -> Any:
        return bvalue


def raw_serializer(shared: BaseCache) -> BaseSerializer:
    return RawRedisSerializer() if isinstance(shared, RedisCache) else RawFileSerializer()


class TwoLevelCache(BaseCache):
    def __init__(
        self,
        shared: BaseCache,
        *,
        mac_key: bytes,
        default_timeout: int = 300,
        max_bytes: int = LOCAL_MAX_BYTES,
    ):
        super().__init__(default_timeout=default_timeout)
        if len(mac_key) < 16:
            raise ValueError("the cache MAC key must have at least 16 bytes")
        self.shared = shared
        # the backend stores and returns our bytes untouched: it never (un)pickles anything
        shared.serializer = raw_serializer(shared)
        self._mac_key = mac_key
        self.mac_failures = 0
        self._logged_bad_keys: set[str] = set()
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
        secret = app.config.get("SECRET_KEY") or ""
        if not secret:
            # settings built without a key (scripts, tests): a random key for this process, so
            # nothing written by anyone else can ever verify (entries are not shared then)
            log.warning("no SECRET_KEY: the shared cache uses a random per-process MAC key")
            secret = secrets.token_hex(32)
        return cls(
            shared,
            mac_key=derive_mac_key(secret),
            default_timeout=config.get("CACHE_DEFAULT_TIMEOUT", 300),
        )

    # -- authentication ------------------------------------------------------------------------
    def _mac(self, key: str, payload: bytes) -> bytes:
        mac = hmac.new(self._mac_key, digestmod=hashlib.sha256)
        encoded = key.encode("utf-8")
        mac.update(len(encoded).to_bytes(4, "big") + encoded)  # binds the blob to its key
        mac.update(payload)
        return mac.digest()

    def seal(self, key: str, payload: bytes) -> bytes:
        """``MAC || payload``: what the shared level stores for ``key``."""
        return self._mac(key, payload) + payload

    def open(self, key: str, blob: Any) -> bytes | None:
        """The payload of a shared blob whose MAC checks out, else None (never unpickled)."""
        if (
            isinstance(blob, bytes)
            and len(blob) > MAC_BYTES
            and hmac.compare_digest(blob[:MAC_BYTES], self._mac(key, blob[MAC_BYTES:]))
        ):
            return blob[MAC_BYTES:]
        self.mac_failures += 1
        if key not in self._logged_bad_keys and len(self._logged_bad_keys) < MAX_LOGGED_KEYS:
            self._logged_bad_keys.add(key)
            log.warning(
                "shared cache entry %r failed its authentication check: ignored (not "
                "deserialised) and recomputed; %d such entries so far",
                key,
                self.mac_failures,
            )
        return None

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
            if blob is not None:
                blob = self.open(key, blob)  # MAC checked before anything is unpickled
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
            return bool(self.shared.set(key, self.seal(key, blob), timeout=timeout))
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
            return bool(self.shared.add(key, self.seal(key, blob), timeout=timeout))
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
