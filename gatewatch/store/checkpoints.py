"""Learnt detector state that survives a restart and follows a partition to its next owner.

Detectors that learn baselines (``snapshot``/``restore`` on ``detectors.base.Detector``)
are checkpointed into the store's ``detector_checkpoints`` table, together with the
Kafka positions the state includes (``source`` -> last offset observed). When a
consumer is assigned partitions, it restores the newest checkpoint that covers them:

- after a restart, the whole state (models, baselines, open windows);
- on a rebalance, the entities it does not know yet, and the positions of the
  partitions it takes over.

Records at or before a restored position are skipped by the detector (they are
already learnt); records between a checkpoint and the committed offset, if any, are
simply not learnt: checkpoints are taken right after a commit, so that gap is what
arrived in the meantime.

The state is pickled. A pickle from an untrusted source runs code, so every
checkpoint is signed with HMAC-SHA256 under a key derived from the ingest salt (kept
in ``data_dir`` or set as ``ingest.fingerprint_salt``: consumers of one group share
it), and one whose signature does not verify is refused and logged, never loaded.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import pickle
import socket
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from detectors.base import Detector
from gatewatch.store.client import Store

log = logging.getLogger(__name__)
_TABLE = "detector_checkpoints"


def checkpoint_key(salt: bytes) -> bytes:
    """The signing key: derived from the ingest salt, never the salt itself."""
    return hashlib.blake2b(salt, key=b"gatewatch detector checkpoint", digest_size=32).digest()


@dataclass(frozen=True, slots=True)
class Saved:
    """What one checkpoint held: its size and the positions it included."""

    size: int
    positions: dict[str, int]


class Checkpoints:
    """Saves and restores the state of the learning detectors of one consumer group."""

    def __init__(self, store: Store, key: bytes, group_id: str) -> None:
        self._store = store
        self._key = key
        self.group_id = group_id
        self.instance = f"{socket.gethostname()}:{os.getpid()}"

    def save(self, detectors: Sequence[Detector[Any]], *, now: float | None = None) -> Saved | None:
        """Store one checkpoint of every detector that has state (None: none has, or
        none has read a record yet)."""
        states: dict[str, Any] = {}
        positions: dict[str, int] = {}
        for detector in detectors:
            state = detector.snapshot()
            if state is None:
                continue
            states[detector.label] = state
            for source, position in state.get("positions", {}).items():
                positions[source] = max(position, positions.get(source, -1))
        if not states or not positions:
            return None  # nothing learnt from the stream yet: keep the last good one
        blob = zlib.compress(pickle.dumps(states, protocol=pickle.HIGHEST_PROTOCOL), 3)
        positions_text = orjson.dumps(positions, option=orjson.OPT_SORT_KEYS).decode()
        self._store.insert_rows(
            _TABLE,
            [
                {
                    "ts": time.time() if now is None else now,
                    "group_id": self.group_id,
                    "instance": self.instance,
                    "sources": sorted(positions),
                    "positions": positions_text,
                    "state": base64.b64encode(blob).decode(),
                    "signature": self._sign(blob, positions_text),
                }
            ],
        )
        log.info(
            "checkpointed %s (%d KiB) at %s",
            ", ".join(states),
            len(blob) >> 10,
            _describe(positions),
        )
        return Saved(len(blob), positions)

    def restore(
        self, detectors: Sequence[Detector[Any]], sources: Iterable[str] | None = None
    ) -> dict[str, int]:
        """Restore the newest checkpoint covering any of ``sources`` (None: the group's
        newest) into ``detectors``; returns the positions restored (empty: none)."""
        wanted = None if sources is None else sorted(set(sources))
        where = "group_id = {group:String}"
        parameters: dict[str, Any] = {"group": self.group_id}
        if wanted is not None:
            if not wanted:
                return {}
            where += " AND hasAny(sources, {sources:Array(String)})"
            parameters["sources"] = wanted
        rows = self._store.query(
            f"SELECT positions, state, signature FROM {self._store.database}.{_TABLE} "
            f"WHERE {where} ORDER BY ts DESC LIMIT 1",
            parameters,
        )
        if not rows:
            return {}
        positions_text, state_text, signature = rows[0]
        blob = base64.b64decode(state_text)
        if not hmac.compare_digest(signature, self._sign(blob, positions_text)):
            log.error(
                "refusing a detector checkpoint whose signature does not verify (another "
                "salt, or tampered with): baselines start empty"
            )
            return {}
        states: dict[str, Any] = pickle.loads(zlib.decompress(blob))  # noqa: S301 - signed
        positions: dict[str, int] = orjson.loads(positions_text)
        only = None if wanted is None else set(wanted)
        restored: dict[str, int] = {}
        for detector in detectors:
            state = states.get(detector.label)
            if state is None:
                continue
            if detector.restore(state, sources=only):
                restored.update({s: p for s, p in positions.items() if only is None or s in only})
                log.info(
                    "restored %s from a checkpoint at %s", detector.label, _describe(positions)
                )
            else:
                log.warning(
                    "checkpoint of %s no longer fits (its windows or model changed, or an "
                    "earlier version of the detector wrote it): its baselines start empty",
                    detector.label,
                )
        return restored

    def prune(self, keep: int = 3) -> None:
        """Drop this instance's older checkpoints beyond the newest ``keep``."""
        rows = self._store.query(
            f"SELECT ts FROM {self._store.database}.{_TABLE} WHERE group_id = {{group:String}} "
            "AND instance = {instance:String} ORDER BY ts DESC LIMIT 1 OFFSET {keep:UInt32}",
            {"group": self.group_id, "instance": self.instance, "keep": keep - 1},
        )
        if rows:
            self._store.command(
                f"ALTER TABLE {self._store.database}.{_TABLE} DELETE WHERE group_id = "
                "{group:String} AND instance = {instance:String} "
                "AND ts < toDateTime64({cutoff:Float64}, 3, 'UTC')",
                parameters={
                    "group": self.group_id,
                    "instance": self.instance,
                    "cutoff": round(rows[0][0].timestamp(), 3),
                },
            )

    def _sign(self, blob: bytes, positions: str) -> str:
        mac = hmac.new(self._key, digestmod=hashlib.sha256)
        mac.update(self.group_id.encode() + b"\x1f" + positions.encode() + b"\x1f")
        mac.update(blob)
        return mac.hexdigest()


def _describe(positions: dict[str, int]) -> str:
    if not positions:
        return "no positions"
    shown = ", ".join(f"{s}@{p}" for s, p in sorted(positions.items())[:4])
    more = len(positions) - 4
    return shown + (f" and {more} more" if more > 0 else "")
