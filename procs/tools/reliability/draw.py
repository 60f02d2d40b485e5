"""Where a fuzz input's choices come from: each target's generator is written once against
``Draw``, and two sources drive it.

* ``HypothesisDraw``: every choice is a hypothesis draw, so a failure shrinks to its smallest
  input. The property tests use it; it costs about 2 ms an input here.
* ``RandomDraw``: every choice comes from ``random.Random``, biased to the edges as hypothesis
  is (the ends of a range, zero, small numbers, NaN and the infinities, odd characters). It costs
  tens of microseconds an input, which is what makes ``b25 fuzz --inputs 1000000`` a run of
  minutes per target rather than of hours (decision 048). A failure is reported with its input
  and its seed, which reproduce it.
"""

from __future__ import annotations

import math
import random
import struct
from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Draw(Protocol):
    def integer(self, lo: int, hi: int) -> int:
        """An integer in [lo, hi]."""
        ...

    def choice(self, options: Sequence[T]) -> T:
        """One of ``options`` (not empty)."""
        ...

    def binary(self, max_size: int, min_size: int = 0) -> bytes: ...

    def text(self, max_size: int, alphabet: str | None = None, min_size: int = 0) -> str:
        """Any text (no surrogates), or text of ``alphabet``'s characters."""
        ...

    def floating(self) -> float:
        """Any float: NaN and the infinities included."""
        ...


class HypothesisDraw:
    """The choices of a hypothesis ``st.composite`` function's ``draw``."""

    def __init__(self, draw: Any) -> None:
        from hypothesis import strategies as st

        self._draw = draw
        self._st = st

    def integer(self, lo: int, hi: int) -> int:
        return self._draw(self._st.integers(lo, hi))

    def choice(self, options: Sequence[T]) -> T:
        return self._draw(self._st.sampled_from(options))

    def binary(self, max_size: int, min_size: int = 0) -> bytes:
        return self._draw(self._st.binary(min_size=min_size, max_size=max_size))

    def text(self, max_size: int, alphabet: str | None = None, min_size: int = 0) -> str:
        if alphabet is None:
            return self._draw(self._st.text(min_size=min_size, max_size=max_size))
        return self._draw(self._st.text(alphabet=alphabet, min_size=min_size, max_size=max_size))

    def floating(self) -> float:
        return self._draw(self._st.floats())


_ODD_CHARACTERS = "\0\t\n\r \"'\\&=%+#;,[]{}é\u00a0\u2028\ufeff\U0001f600\U0010ffff"
_FLOAT_EDGES = (0.0, -0.0, 1.0, -1.0, 0.1, 1e-7, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308,
                math.inf, -math.inf, math.nan, 9007199254740993.0)


class RandomDraw:
    """The choices of ``random.Random(seed)``: plain where that finds bugs, biased where a uniform
    draw would never reach the edge (an integer in ±2^70 is almost never 0 or -1)."""

    def __init__(self, seed: int) -> None:
        self.rnd = random.Random(seed)

    def integer(self, lo: int, hi: int) -> int:
        rnd = self.rnd
        r = rnd.random()
        if r < 0.15 and hi > lo:
            return min(hi, max(lo, rnd.choice((lo, hi, lo + 1, hi - 1, 0, 1, -1))))
        if r < 0.45 and hi - lo > 512:
            return min(hi, max(lo, rnd.randint(-256, 256)))
        return rnd.randint(lo, hi)

    def choice(self, options: Sequence[T]) -> T:
        return options[self.rnd.randrange(len(options))]

    def _size(self, min_size: int, max_size: int) -> int:
        # short ones mostly, as hypothesis does; the longest now and then
        rnd = self.rnd
        if rnd.random() < 0.1:
            return max_size
        return min_size + min(max_size - min_size, int(rnd.expovariate(0.25)))

    def binary(self, max_size: int, min_size: int = 0) -> bytes:
        n = self._size(min_size, max_size)
        rnd = self.rnd
        if rnd.random() < 0.2:
            return bytes([rnd.choice((0, 0xFF, 0x7F, 0x80, 0x22, 0x5C))]) * n
        return rnd.randbytes(n)

    def text(self, max_size: int, alphabet: str | None = None, min_size: int = 0) -> str:
        n = self._size(min_size, max_size)
        rnd = self.rnd
        if alphabet is not None:
            return "".join(rnd.choice(alphabet) for _ in range(n))
        out = []
        for _ in range(n):
            r = rnd.random()
            if r < 0.7:
                out.append(chr(rnd.randint(32, 126)))
            elif r < 0.9:
                out.append(rnd.choice(_ODD_CHARACTERS))
            else:
                c = rnd.randint(0, 0x10FFFF)
                out.append(chr(c) if not 0xD800 <= c <= 0xDFFF else "\ufffd")
        return "".join(out)

    def floating(self) -> float:
        rnd = self.rnd
        r = rnd.random()
        if r < 0.3:
            return rnd.choice(_FLOAT_EDGES)
        if r < 0.6:
            return struct.unpack("<d", rnd.randbytes(8))[0]  # any bit pattern: subnormals and NaN payloads
        return rnd.uniform(-1e6, 1e6)


def json_value(d: Draw, special: Sequence[str] = (), depth: int = 0) -> Any:
    """Any JSON value: mostly a scalar, sometimes a short list or object of them (two levels)."""
    k = d.integer(0, 10 if depth < 2 else 6)
    if k == 0:
        return None
    if k == 1:
        return d.choice((True, False))
    if k == 2:
        return d.integer(-(1 << 70), 1 << 70)
    if k == 3:
        return d.floating()
    if k == 4:
        return d.text(12)
    if k <= 6:
        return d.choice(special) if special else d.text(12)
    if k <= 8:
        return [json_value(d, special, depth + 1) for _ in range(d.integer(0, 3))]
    return {d.text(4): json_value(d, special, depth + 1) for _ in range(d.integer(0, 3))}


def strategy(generate: Any) -> Any:
    """The hypothesis strategy of a generator ``generate(draw: Draw)``."""
    from hypothesis import strategies as st

    return st.composite(lambda draw: generate(HypothesisDraw(draw)))()
