"""Work-around until ``shm.ring.struct_for`` packs void padding fields.

``OrderEvent`` ends in a ``_pad`` ``V32`` field, which ``struct_for`` rejects, so no Producer or
Consumer of the ``exec`` ring can be built. ``ensure_void_padding()`` wraps ``struct_for`` so a
void field becomes ``x`` padding (the same bytes); it does nothing once shm handles it.
Proposed fix in shm/ring.py: map ``("V", n)`` to ``f"{n}x"`` (and pass no value for it).
"""

from __future__ import annotations

import struct

import numpy as np

import shm.ring as _ring
from procs.core import messages as M


def _struct_for_with_padding(dtype: np.dtype) -> struct.Struct:
    dtype = np.dtype(dtype)
    names = [n for n in dtype.names or () if dtype.fields[n][0].kind != "V"]
    if names == list(dtype.names or ()):
        return _orig(dtype)
    packed = np.dtype({"names": names, "formats": [dtype.fields[n][0] for n in names],
                       "offsets": [dtype.fields[n][1] for n in names], "itemsize": dtype.itemsize})
    return _orig(packed)


_orig = _ring.struct_for


def ensure_void_padding() -> None:
    try:
        _ring.struct_for(M.OrderEvent)
    except ValueError:
        _ring.struct_for = _struct_for_with_padding
