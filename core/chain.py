"""The audit trail's hash primitives (no database access): the canonical serialisation of
a row and its SHA-256. Used by :mod:`core.db` (migration 5) and :mod:`core.audit`."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Final

#: prev_hash of the first row of the chain
GENESIS_HASH: Final = hashlib.sha256(b"immunosep-audit-genesis").hexdigest()


def utc_iso(value: datetime) -> str:
    """A stored (naive UTC) or aware time as ISO 8601 UTC with ``Z`` and microseconds."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_row(
    row_id: int,
    time: datetime,
    user: str,
    role: str,
    action: str,
    target: str | None,
    detail: str | None,
    prev_hash: str,
) -> bytes:
    """The bytes a row's hash is computed over (a compact JSON array, UTF-8)."""
    payload = [int(row_id), utc_iso(time), user, role, action, target, detail, prev_hash]
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def row_hash(
    row_id: int,
    time: datetime,
    user: str,
    role: str,
    action: str,
    target: str | None,
    detail: str | None,
    prev_hash: str,
) -> str:
    """SHA-256 (hex) of :func:`canonical_row`."""
    data = canonical_row(row_id, time, user, role, action, target, detail, prev_hash)
    return hashlib.sha256(data).hexdigest()
