"""Helpers for tests that fill shared memory themselves (producers created by the test)."""

from __future__ import annotations

import numpy as np

from procs.core.registry import build_registry
from shm import ring
from shm.ring import Producer

_orig_struct_for = ring.struct_for


def _struct_for_skipping_void(dtype: np.dtype):
    """shm.ring.struct_for refuses raw ``V`` padding fields (OrderEvent._pad); pack them as gaps."""
    dt = np.dtype(dtype)
    keep = [n for n in dt.names if dt.fields[n][0].kind != "V"]
    if len(keep) == len(dt.names):
        return _orig_struct_for(dt)
    return _orig_struct_for(np.dtype({"names": keep, "formats": [dt.fields[n][0] for n in keep],
                                      "offsets": [dt.fields[n][1] for n in keep], "itemsize": dt.itemsize}))


def producer(instance: str, name: str, depth: int = 20) -> Producer:
    """The registry's producer for ``name``, working around struct_for on padded dtypes."""
    saved = ring.struct_for
    ring.struct_for = _struct_for_skipping_void
    try:
        return build_registry(depth).producer(instance, name)
    finally:
        ring.struct_for = saved
