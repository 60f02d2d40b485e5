"""The latency model: how long market data, order requests and answers travel between the
exchange and b25, in a lockstep replay and a backtest (``[sim.latency]``, ``--latency MODEL``).

Three latencies, one model each:

* ``feed``: the exchange publishes an event -> b25 receives it;
* ``entry``: b25 writes an order request -> the matching engine sees it;
* ``response``: the matching engine acts (an acknowledgement, a fill) -> b25 receives the answer
  or the user-stream event.

Models (the text form is what ``[sim.latency]`` and ``--latency`` take; a duration is a number
with ``ns``, ``us``, ``ms`` or ``s``, a bare number is microseconds)::

    constant D              always D ("constant 0" is the old zero-latency lockstep)
    lognormal MEDIAN SIGMA  exp(N(ln MEDIAN, SIGMA^2)): a floor-free, right-skewed network delay
    empirical FILE          drawn uniformly from the samples in FILE (one duration a line, or
                            numbers in us); a path is taken from the model file's directory
    recorded                feed only: the recording's own receive time minus the exchange's
                            event time, per event, less the smallest such difference in the
                            recording (the two clocks' offset is unknown: the fastest event of
                            the recording is taken to have had no latency)

A whole model: ``default`` (below), ``constant D`` (all three), a TOML model file (keys
``feed``, ``entry``, ``response``, ``seed``; ``b25 latency fit`` writes one), or per latency
``feed=recorded;entry=lognormal 4ms 0.56;response=constant 2ms`` (an unnamed one is constant 0).

The default is a client in AWS Tokyo, where Binance's matching engine runs: the recording's own
feed latency, and lognormal order legs with a 4 ms median and sigma 0.56 (p99 ~15 ms), taken
from Deltix's measurement of Binance's market data from Tokyo AWS (4 ms average, 13 ms p99;
docs/decisions/037-latency-model.md says why and what else was considered).

Draws are seeded (``seed``) and made in a fixed order (``Sampler``: one stream per latency), so
a lockstep replay and a backtest of the same inputs draw the same latencies.

The exchange's timeline: ``schedule`` gives each recorded frame the time the exchange applies
it (``x``) and the time b25 receives it (``r``). ``r`` is the recording's receive time (made
non-decreasing: one TCP stream keeps its order), ``x = r - feed`` made non-decreasing too (the
exchange applies a recording in its order), so b25 sees every frame when the recording saw it
and the exchange acted on it one feed latency before.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import numpy as np

from procs.core.config import Section

KINDS = ("feed", "entry", "response")
MODELS = ("constant", "lognormal", "empirical", "recorded")
DEFAULTS = {"feed": "recorded", "entry": "lognormal 4ms 0.56", "response": "lognormal 4ms 0.56"}
DEFAULT_TEXT = ";".join(f"{k}={v}" for k, v in DEFAULTS.items())
ZERO_TEXT = "constant 0"
_STREAM = {"feed": 1, "entry": 2, "response": 3}  # each latency's own random stream
_BLOCK = 1024  # draws made at a time (the sequence does not depend on it)
_UNITS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(ns|us|ms|s)?\s*$")


def parse_duration(text: str, what: str = "duration") -> int:
    """``"4ms"``, ``"250us"``, ``"0"``, ``"1.5e3"`` (us) -> ns; ValueError naming ``what``."""
    m = _DURATION.match(str(text))
    if m is None:
        raise ValueError(f"not a duration (a number with ns, us, ms or s): {what}={text!r}")
    return int(round(float(m.group(1)) * _UNITS[m.group(2) or "us"]))


def _fmt(ns: int) -> str:
    if ns == 0:
        return "0"
    if ns % 1_000_000 == 0:
        return f"{ns // 1_000_000}ms"
    if ns % 1_000 == 0:
        return f"{ns // 1_000}us"
    return f"{ns}ns"


@dataclass(frozen=True)
class LatencySpec:
    """One latency's model (see the module docstring for the text form)."""

    model: str = "constant"
    value_ns: int = 0  # constant
    median_ns: int = 0  # lognormal
    sigma: float = 0.0
    samples_ns: tuple[int, ...] = ()  # empirical
    source: str = ""  # empirical: the file the samples came from

    @classmethod
    def parse(cls, text: str, kind: str, base_dir: Path | None = None) -> LatencySpec:
        """A spec from its text; ValueError naming the latency and the reason."""
        parts = str(text).split()
        if not parts:
            raise ValueError(f"empty latency model: {kind}={text!r}")
        model, args = parts[0].lower(), parts[1:]
        where = f"{kind}={text!r}"
        if model == "constant" and len(args) == 1:
            v = parse_duration(args[0], kind)
            return cls("constant", value_ns=v)
        if model == "lognormal" and len(args) == 2:
            median = parse_duration(args[0], kind)
            try:
                sigma = float(args[1])
            except ValueError:
                raise ValueError(f"lognormal sigma is not a number: {where}") from None
            if median <= 0 or not 0.0 <= sigma <= 5.0:
                raise ValueError(f"lognormal needs median > 0 and 0 <= sigma <= 5: {where}")
            return cls("lognormal", median_ns=median, sigma=sigma)
        if model == "empirical" and len(args) == 1:
            path = Path(args[0])
            if not path.is_absolute() and base_dir is not None:
                path = base_dir / path
            return cls("empirical", samples_ns=read_samples(path, kind), source=str(path))
        if model == "recorded" and not args:
            if kind != "feed":
                raise ValueError(f"recorded is a feed latency only (a recording has no order latencies): {where}")
            return cls("recorded")
        raise ValueError(f"unknown latency model {where}: expected 'constant D', 'lognormal MEDIAN SIGMA', "
                         f"'empirical FILE' or 'recorded' (feed)")

    def text(self) -> str:
        if self.model == "constant":
            return f"constant {_fmt(self.value_ns)}"
        if self.model == "lognormal":
            return f"lognormal {_fmt(self.median_ns)} {self.sigma:g}"
        if self.model == "empirical":
            return f"empirical {self.source}"
        return self.model

    def describe(self) -> dict:
        """For summaries: the model, its parameters and its quantiles in us (recorded: from the data)."""
        out: dict = {"model": self.text()}
        if self.model == "empirical":
            a = np.asarray(self.samples_ns, dtype=np.float64) / 1000
            out.update(samples=len(a), p50_us=round(float(np.percentile(a, 50)), 1),
                       p99_us=round(float(np.percentile(a, 99)), 1))
        elif self.model == "lognormal":
            out.update(p50_us=round(self.median_ns / 1000, 1),
                       p99_us=round(self.median_ns * float(np.exp(2.3263 * self.sigma)) / 1000, 1))
        elif self.model == "constant":
            out.update(p50_us=self.value_ns / 1000, p99_us=self.value_ns / 1000)
        return out


def read_samples(path: Path, kind: str = "empirical") -> tuple[int, ...]:
    """Latency samples from a file: one duration per line (``#`` comments and blank lines skipped)."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise ValueError(f"cannot read the samples of {kind}: path={path} reason={exc}") from None
    out = []
    for n, line in enumerate(lines, 1):
        s = line.split("#", 1)[0].strip()
        if s:
            v = parse_duration(s, f"{path}:{n}")
            out.append(v)
    if not out:
        raise ValueError(f"no samples in {kind}'s file: path={path}")
    return tuple(out)


@dataclass(frozen=True)
class LatencyModel:
    """The three latencies and the seed of their draws."""

    feed: LatencySpec = field(default_factory=LatencySpec)
    entry: LatencySpec = field(default_factory=LatencySpec)
    response: LatencySpec = field(default_factory=LatencySpec)
    seed: int = 1
    name: str = ZERO_TEXT  # how it was given (for summaries)

    @property
    def is_zero(self) -> bool:
        return all(s.model == "constant" and s.value_ns == 0 for s in (self.feed, self.entry, self.response))

    @classmethod
    def parse(cls, text: str, base_dir: Path | None = None, seed: int | None = None) -> LatencyModel:
        """``default``, ``constant D``, a model file, or ``feed=..;entry=..;response=..``."""
        t = str(text).strip()
        if t.lower() == "default":
            m = cls.parse(DEFAULT_TEXT, base_dir, seed)
            return _named(m, "default")
        path = Path(t)
        if t.endswith(".toml") or (path.suffix and path.exists()):
            return load_model_file(path, seed)
        specs: dict[str, LatencySpec] = {}
        if "=" not in t:  # one model for all three
            for kind in KINDS:
                specs[kind] = LatencySpec.parse(t, kind, base_dir)
        else:
            for part in re.split(r"[;,]", t):
                if not part.strip():
                    continue
                kind, eq, spec = part.partition("=")
                kind = kind.strip().lower()
                if not eq or kind not in KINDS:
                    raise ValueError(f"latency model part must be feed=, entry= or response=: {part.strip()!r}")
                if kind in specs:
                    raise ValueError(f"latency {kind} given twice: {t!r}")
                specs[kind] = LatencySpec.parse(spec, kind, base_dir)
        return cls(**specs, seed=1 if seed is None else seed, name=t)

    def describe(self) -> dict:
        return {"name": self.name, "seed": self.seed,
                **{k: getattr(self, k).describe() for k in KINDS}}

    def sampler(self, kind: str) -> Sampler:
        return Sampler(getattr(self, kind), self.seed, _STREAM[kind])

    def toml(self) -> str:
        """The model as a model file (``load_model_file`` reads it back)."""
        lines = [f"seed = {self.seed}"]
        lines += [f'{k} = "{getattr(self, k).text()}"' for k in KINDS]
        return "\n".join(lines) + "\n"


def _named(m: LatencyModel, name: str) -> LatencyModel:
    return LatencyModel(m.feed, m.entry, m.response, m.seed, name)


def load_model_file(path: str | Path, seed: int | None = None) -> LatencyModel:
    """A TOML model file: ``feed``, ``entry``, ``response`` (model texts) and ``seed``."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"cannot read latency model file: path={p} reason={exc}") from None
    unknown = sorted(set(data) - {*KINDS, "seed"})
    if unknown:
        raise ValueError(f"unknown key in latency model file: path={p} key={unknown[0]} "
                         f"(expected feed, entry, response, seed)")
    specs = {k: LatencySpec.parse(str(data[k]), k, p.parent) for k in KINDS if k in data}
    s = int(data.get("seed", 1)) if seed is None else seed
    return LatencyModel(**specs, seed=s, name=str(p))


class Sampler:
    """Seeded draws of one latency, in ns, made in blocks (the same sequence whatever the block)."""

    def __init__(self, spec: LatencySpec, seed: int, stream: int) -> None:
        self.spec = spec
        self._rng = np.random.Generator(np.random.PCG64([seed, stream]))
        self._buf: list[int] = []
        self._i = 0
        self.drawn = 0
        if spec.model == "constant":
            self.next = self._constant  # type: ignore[method-assign]

    def _constant(self) -> int:
        self.drawn += 1
        return self.spec.value_ns

    def next(self) -> int:
        if self._i >= len(self._buf):
            self._buf = self.block(_BLOCK).tolist()
            self._i = 0
        v = self._buf[self._i]
        self._i += 1
        self.drawn += 1
        return v

    def block(self, n: int) -> np.ndarray:
        """``n`` draws (int64 ns) from the stream."""
        s = self.spec
        if s.model == "constant":
            return np.full(n, s.value_ns, np.int64)
        if s.model == "lognormal":
            return np.rint(self._rng.lognormal(np.log(s.median_ns), s.sigma, n)).astype(np.int64)
        if s.model == "empirical":
            return np.asarray(s.samples_ns, np.int64)[self._rng.integers(0, len(s.samples_ns), n)]
        raise ValueError(f"a {s.model} latency is not drawn (it comes with each recorded event)")


def schedule(model: LatencyModel, recv_ns: np.ndarray, exch_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x, r) per recorded frame: when the exchange applies it, when b25 receives it (ns).

    ``recv_ns``: the recording's receive times; ``exch_ns``: the exchange's event times (0 where a
    frame has none: it takes the latency of the frame before it)."""
    r = np.maximum.accumulate(np.asarray(recv_ns, np.int64)) if len(recv_ns) else np.zeros(0, np.int64)
    spec = model.feed
    if spec.model == "recorded":
        exch = np.asarray(exch_ns, np.int64)
        has = exch > 0
        lat = np.zeros(len(r), np.int64)
        if has.any():
            raw = r[has] - exch[has]
            lat[has] = raw - raw.min()
            # frames with no exchange time take the latency of the frame before them
            idx = np.where(has, np.arange(len(r)), 0)
            np.maximum.accumulate(idx, out=idx)
            lat = np.where(has, lat, np.where(has[idx], lat[idx], 0))
    else:
        lat = model.sampler("feed").block(len(r))
    x = np.maximum.accumulate(r - lat) if len(r) else r
    return x, r


class LatencySection(Section):
    """``[sim.latency]``: the model of a lockstep replay (a model file given as ``file`` wins)."""

    feed: str = DEFAULTS["feed"]
    entry: str = DEFAULTS["entry"]
    response: str = DEFAULTS["response"]
    seed: int = 1
    file: str = ""  # a model file (b25 latency fit writes one): its latencies replace the three above
    name: str = ""  # how the model is named in summaries ("" = from the three latencies)

    def __post_init__(self) -> None:
        if not self.file:  # a bad model fails at start, naming the latency (a file: when it is read)
            self.model()

    def model(self, base_dir: Path | None = None) -> LatencyModel:
        if self.file:
            path = Path(self.file)
            return load_model_file(base_dir / path if base_dir is not None and not path.is_absolute() else path)
        specs = {k: LatencySpec.parse(getattr(self, k), k, base_dir) for k in KINDS}
        name = self.name or ("default" if all(getattr(self, k) == DEFAULTS[k] for k in KINDS) else ";".join(
            f"{k}={getattr(self, k)}" for k in KINDS))
        return LatencyModel(**specs, seed=self.seed, name=name)

    @classmethod
    def of(cls, model: LatencyModel) -> LatencySection:
        """The section that gives ``model`` (how the replay harness passes ``--latency`` on)."""
        return cls(feed=model.feed.text(), entry=model.entry.text(), response=model.response.text(),
                   seed=model.seed, name=model.name)



def section_dict(model: LatencyModel) -> dict:
    """``[sim.latency]`` as a dict for a generated config."""
    return msgspec.structs.asdict(LatencySection.of(model))
