"""Work-around until ``shm.ring.struct_for`` packs void padding fields (report: shm/ring.py).

``OrderEvent`` ends in a ``_pad`` ``V32`` field that ``struct_for`` rejects, so no Consumer of the
``exec`` ring can be built. ``ensure_void_padding()`` makes void fields plain ``x`` padding (the
same bytes) and does nothing once shm handles them (execution carries the same shim).
Proposed fix in shm/ring.py: map ``("V", n)`` to ``f"{n}x"``.
"""

from __future__ import annotations

import struct

import numpy as np

import shm.ring as _ring
from procs.core import messages as M

_orig = _ring.struct_for


def _struct_for_with_padding(dtype: np.dtype) -> struct.Struct:
    dtype = np.dtype(dtype)
    names = [n for n in dtype.names or () if dtype.fields[n][0].kind != "V"]
    if names == list(dtype.names or ()):
        return _orig(dtype)
    packed = np.dtype({"names": names, "formats": [dtype.fields[n][0] for n in names],
                       "offsets": [dtype.fields[n][1] for n in names], "itemsize": dtype.itemsize})
    return _orig(packed)


def ensure_void_padding() -> None:
    try:
        _ring.struct_for(M.OrderEvent)
    except ValueError:
        _ring.struct_for = _struct_for_with_padding
