"""The two-level cache: process LRU in front of a shared backend (real backends only)."""

from __future__ import annotations

import pickle

import pandas as pd
from flask_caching.backends import SimpleCache

from components.server.cache import MAC_BYTES, TwoLevelCache, derive_mac_key

KEY = derive_mac_key("test-secret")


def test_cb001_values_are_copies_so_mutation_never_leaks():
    cache = TwoLevelCache(SimpleCache(), mac_key=KEY)
    cache.set("k", pd.DataFrame({"a": [1, 2]}))
    got = cache.get("k")
    got.loc[0, "a"] = 99  # a careless caller
    assert cache.get("k")["a"].tolist() == [1, 2]


def test_cb002_local_hit_without_the_shared_level():
    shared = SimpleCache()
    cache = TwoLevelCache(shared, mac_key=KEY)
    cache.set("k", {"x": 1})
    shared.clear()  # e.g. Redis restarted empty
    assert cache.get("k") == {"x": 1}
    other = TwoLevelCache(shared, mac_key=KEY)  # another worker: miss everywhere
    assert other.get("k") is None


def test_cb003_shared_hit_fills_the_local_level():
    shared = SimpleCache()
    TwoLevelCache(shared, mac_key=KEY).set("k", [1, 2, 3])  # another worker wrote it
    cache = TwoLevelCache(shared, mac_key=KEY)
    assert cache.get("k") == [1, 2, 3]
    shared.clear()
    assert cache.get("k") == [1, 2, 3]


def test_cb003b_values_are_pickled_once_and_shared_as_bytes():
    shared = SimpleCache()
    cache = TwoLevelCache(shared, mac_key=KEY)
    value = {"rows": list(range(5))}
    cache.set("k", value)
    stored = shared.get("k")
    assert isinstance(stored, bytes)
    assert stored[:MAC_BYTES] == cache.seal("k", stored[MAC_BYTES:])[:MAC_BYTES]
    assert pickle.loads(stored[MAC_BYTES:]) == value
    # an entry written by a build without MACs is a miss (never unpickled)
    shared.set("old", pickle.dumps([4, 5]))
    assert cache.get("old") is None
    assert cache.mac_failures == 1
    # and a caller mutating what it got cannot alter the cached value
    got = cache.get("k")
    got["rows"].append(99)
    assert cache.get("k") == value


def test_cb004_local_level_is_bounded_lru():
    cache = TwoLevelCache(SimpleCache(), mac_key=KEY, max_bytes=3000)
    for i in range(10):
        cache.set(f"k{i}", "x" * 900)
    assert cache._bytes <= 3000
    assert pickle.loads(cache._local_blob("k9")) == "x" * 900
    assert cache._local_blob("k0") is None


def test_cb005_add_is_shared_only_and_atomic_per_key():
    shared = SimpleCache()
    a, b = TwoLevelCache(shared, mac_key=KEY), TwoLevelCache(shared, mac_key=KEY)
    assert a.add("lock", 1) is True
    assert b.add("lock", 1) is False
