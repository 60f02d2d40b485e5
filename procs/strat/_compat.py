"""Temporary workaround, a no-op once shm handles it: ``shm.ring.struct_for`` refuses void
padding fields (``OrderEvent._pad`` is ``V32``), so no Producer or Consumer of ``exec`` can be
built. Until shm maps a ``V`` field to ``x`` pad bytes, wrap it to hide void fields (same
offsets and itemsize, so the struct layout and the segment's dtype hash are unchanged)."""

from __future__ import annotations

import numpy as np

import shm.ring as _ring
from procs.core import messages as M


def _without_void(dtype: np.dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype.names is None:
        return dtype
    keep = [n for n in dtype.names if dtype.fields[n][0].subdtype is not None or dtype.fields[n][0].kind != "V"]
    if len(keep) == len(dtype.names):
        return dtype
    return np.dtype({"names": keep, "formats": [dtype.fields[n][0] for n in keep],
                     "offsets": [dtype.fields[n][1] for n in keep], "itemsize": dtype.itemsize})


def install() -> bool:
    """Wrap struct_for if it still refuses OrderEvent; True when the wrapper was installed."""
    try:
        _ring.struct_for(M.OrderEvent)
        return False
    except ValueError:
        pass
    original = _ring.struct_for
    _ring.struct_for = lambda dtype: original(_without_void(dtype))
    return True


INSTALLED = install()
