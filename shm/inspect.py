"""Inspection for ``b25 shm ls`` and ``b25 shm clean``: what segments exist, who owns them."""

from __future__ import annotations

import os
import time
from typing import Any

import posix_ipc

from . import layout as L
from .segment import list_fifos, list_segments, list_semaphores, open_raw, pid_alive, unlink


def describe(full: str) -> dict[str, Any]:
    """One segment's header as a dict: kind, producer pid and liveness, cursor, consumer lags."""
    seg = open_raw(full)
    if seg is None:
        return {"segment": full, "kind": "unknown"}
    try:
        w = seg.words
        pid = w[L.W_PRODUCER_PID]
        hb = w[L.W_HEARTBEAT_NS]
        out: dict[str, Any] = {
            "segment": full,
            "kind": L.KIND_NAMES.get(w[L.W_KIND], str(w[L.W_KIND])),
            "producer_pid": pid,
            "producer_alive": pid_alive(pid),
            "heartbeat_age_s": round((time.monotonic_ns() - hb) / 1e9, 3) if hb else None,
        }
        if w[L.W_KIND] == L.KIND_RING:
            cur = w[L.W_WRITE_CURSOR]
            out.update(policy=L.POLICY_NAMES.get(w[L.W_POLICY], "?"), capacity=w[L.W_CAPACITY],
                       record_size=w[L.W_RECORD_SIZE], cursor=cur, full_waits=w[L.W_FULL_WAITS])
            out["consumers"] = [
                {"slot": k, "cursor": w[L.consumer_word(k, L.C_CURSOR)],
                 "lag": cur - w[L.consumer_word(k, L.C_CURSOR)],
                 "pid": w[L.consumer_word(k, L.C_PID)],
                 "alive": pid_alive(w[L.consumer_word(k, L.C_PID)]),
                 "lost": w[L.consumer_word(k, L.C_LOST)]}
                for k in range(w[L.W_N_CONSUMERS])
            ]
        elif w[L.W_KIND] == L.KIND_STATE:
            out.update(version=w[L.W_SEQLOCK] >> 1, records=w[L.W_CAPACITY])
        return out
    finally:
        seg.close()


def ls(instance: str | None = None) -> list[dict[str, Any]]:
    return [describe(s) for s in list_segments(instance)]


def clean(instance: str | None = None, force: bool = False) -> tuple[list[str], list[str]]:
    """Remove segments and wake semaphores; (removed, refused) — refuses live producers unless forced."""
    removed: list[str] = []
    refused: list[str] = []
    for full in list_segments(instance):
        d = describe(full)
        if d.get("producer_alive") and not force:
            refused.append(f"{full} (producer pid {d['producer_pid']} alive)")
            continue
        if unlink(full):
            removed.append(full)
    if not refused:
        for sem in list_semaphores(instance):
            try:
                posix_ipc.unlink_semaphore(sem)
                removed.append(sem)
            except posix_ipc.ExistentialError:
                pass
        for path in list_fifos(instance):
            try:
                os.unlink(path)
                removed.append(path)
            except FileNotFoundError:
                pass
    return removed, refused
