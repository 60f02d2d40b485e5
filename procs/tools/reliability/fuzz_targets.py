"""The inputs ``b25 fuzz`` generates and the properties they must keep (hypothesis strategies and
checks; the table of targets is in procs/tools/reliability/fuzz.py)."""


from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

BATCH = 5000
ROOT = Path(__file__).resolve().parents[3]  # the checkout: the real recordings are beside it (../shared)

# -- the journal ---------------------------------------------------------------------------------

def journal_records() -> st.SearchStrategy:
    """Records from a seed: what a record holds does not matter to the reader's property, so the
    bulk is drawn with ``random`` (cheap) and hypothesis drives the shape and the damage."""
    return st.builds(_records_from_seed, st.integers(0, 1 << 32), st.integers(0, 12))


_EDGES = (0, 1, -1, (1 << 63) - 1, -(1 << 63), 1 << 31, 1 << 32)


def _records_from_seed(seed_value: int, n: int) -> list:
    import random

    from procs.execution.journal import JournalRecord

    rnd = random.Random(seed_value)

    def num() -> int:
        return rnd.choice(_EDGES) if rnd.random() < 0.2 else rnd.randint(-(1 << 63), (1 << 63) - 1)

    return [JournalRecord(rnd.randint(-5, 200), "".join(rnd.choice("b25-0123456789é\0") for _ in range(rnd.randint(0, 40))),
                          num(), rnd.randint(-5, 40), rnd.choice((1, -1, 0)), price=num(), qty=num(), client_tag=num(),
                          cum_qty=num(), ring=rnd.randint(-1, 2), ring_seq=num(), epoch=rnd.randint(0, 99),
                          wall_ns=num(), event_seq=num()) for _ in range(n)]


@st.composite
def damaged_journal(draw: st.DrawFn) -> tuple[list, bytes, int]:
    """(records, file bytes, how many records are intact): whole frames, then a damaged tail."""
    from procs.execution.journal import Journal

    records = draw(journal_records())
    frames = [bytes(_frame(Journal, r)) for r in records]
    data = b"".join(frames)
    damage = draw(st.sampled_from(["none", "cut", "flip", "garbage", "zeros", "unchecked"]))
    intact = len(records)
    if damage == "cut" and frames:  # a torn last frame: some of its bytes never written
        last = frames[-1]
        data = data[:len(data) - len(last) + draw(st.integers(0, len(last) - 1))]
        intact -= 1
    elif damage == "flip" and frames:  # bytes of the last frame changed (a host crash, a bad sector)
        last = bytearray(frames[-1])
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, len(last) - 1))
            last[i] ^= draw(st.integers(1, 255))
        data = data[:len(data) - len(last)] + bytes(last)
        intact -= 1
    elif damage == "garbage" and frames:
        # (a file whose first frame is unchecked reads as a journal from before the checksum:
        # garbage alone cannot be told from one, so the damage follows a checked frame, as in
        # every journal written now)
        data += draw(st.binary(min_size=1, max_size=64))
    elif damage == "zeros":  # the preallocated tail of an open journal
        data += bytes(draw(st.integers(1, 64)))
    elif damage == "unchecked" and frames:  # an old-style (unchecked) frame after checked ones: not a record
        import msgspec

        payload = msgspec.msgpack.encode(_records_from_seed(draw(st.integers(0, 1 << 32)), 1)[0])
        data += len(payload).to_bytes(4, "little") + payload
    return records, data, intact


def _frame(journal_type: type, rec: Any) -> bytearray:
    """One frame as the writer makes it (``Journal.frame`` on a scratch instance's buffer)."""
    from procs.execution.journal import HEAD_SIZE

    scratch = journal_type.__new__(journal_type)
    scratch._buf = bytearray(HEAD_SIZE)
    return journal_type.frame(scratch, rec)


def check_journal(case: tuple[list, bytes, int]) -> None:
    from procs.execution.journal import parse_journal

    records, data, intact = case
    got, good = parse_journal(data)
    # never a misread: what comes back is the records written, in order, up to the damage; a
    # flipped byte may still leave the frame valid only if the crc32 matched: not by chance here
    assert got == records[:len(got)], "a record that was never written came back"
    assert len(got) >= intact, f"intact records dropped: {len(got)} of {intact}"
    assert len(got) <= len(records)
    assert parse_journal(data[:good]) == (got, good)  # the good prefix reads the same alone


# -- the ring ------------------------------------------------------------------------------------

def ring_programs() -> st.SearchStrategy:
    op = st.one_of(st.tuples(st.just("publish"), st.integers(1, 20)),
                   st.tuples(st.just("poll"), st.integers(0, 2), st.integers(0, 12)),
                   st.tuples(st.just("poll_one"), st.integers(0, 2)),
                   st.tuples(st.just("read_one"), st.integers(0, 2)))
    return st.tuples(st.sampled_from(["gating", "broadcast"]), st.sampled_from([4, 8, 16]),
                     st.lists(op, max_size=60))


class RingTarget:
    """A real ring in this process's own shm instance, and a model of what each reader must see."""

    def __init__(self) -> None:
        self.instance = f"fuzz{os.getpid()}"
        self.n = 0

    def close(self) -> None:
        from shm.inspect import clean

        clean(self.instance, force=True)

    def check(self, program: tuple[str, int, list]) -> None:
        import numpy as np

        from shm import layout as L
        from shm.ring import Consumer, Producer, RingHeader

        policy_name, capacity, ops = program
        policy = L.POLICY_GATING if policy_name == "gating" else L.POLICY_BROADCAST
        dtype = np.dtype([("seq", "<i8"), ("check", "<i8"), ("_pad", "V48")])  # records are 64-byte multiples
        self.n += 1
        name = f"r{self.n}"
        p = Producer.create(self.instance, name, dtype, capacity, policy, ("a", "b"))
        readers = [Consumer.attach(self.instance, name, dtype, c, timeout=1) for c in ("a", "b")]
        readers.append(Consumer.attach(self.instance, name, dtype, None, timeout=1, from_start=True))
        header = RingHeader(p.seg)
        seen: list[list[int]] = [[], [], []]
        published = 0
        try:
            for op in ops:
                if op[0] == "publish":
                    for _ in range(op[1]):
                        ok = p.try_publish(published, published * 7919 + 1)
                        gated = policy == L.POLICY_GATING and published - min(
                            header.consumer_cursor("a"), header.consumer_cursor("b")) >= capacity
                        assert ok != gated, f"try_publish={ok} with the ring {'full' if gated else 'not full'}"
                        if ok:
                            published += 1
                    continue
                k = op[1]
                c = readers[k]
                if op[0] == "poll":
                    batch = c.poll(op[2])
                    rows = [(int(r["seq"]), int(r["check"])) for r in batch]
                    c.commit()
                else:
                    v = c.poll_one() if op[0] == "poll_one" else c.read_one()
                    rows = [] if v is None else [v[:2]]
                    if op[0] == "read_one":
                        c.store_position()
                for s, chk in rows:
                    assert chk == s * 7919 + 1, f"record {s} read torn or from another lap"
                    seen[k].append(s)
            for k, c in enumerate(readers):
                got = seen[k]
                assert got == sorted(set(got)), f"reader {k} read out of order or twice: {got[:20]}"
                assert all(0 <= s < published for s in got)
                gating_reader = policy == L.POLICY_GATING and k < 2
                if gating_reader:
                    assert got == list(range(len(got))), f"gating reader {k} missed a record: {got[:20]}"
                assert c.position <= published
                missed = c.position - len(got)
                assert missed == c.lost, f"reader {k}: {missed} skipped but {c.lost} counted lost"
        finally:
            for c in readers:
                c.close()
            p.close(unlink=True)


# -- config --------------------------------------------------------------------------------------

def _config_types() -> dict[str, type]:
    from procs.core import services
    from procs.exchange_sim.trading.config import TradingConfig

    out: dict[str, type] = {}
    for section, path in services.section_types().items():
        module, _, cls = path.partition(":")
        out[section] = getattr(__import__(module, fromlist=[cls]), cls)
    out["sim_trading"] = TradingConfig
    return out


SCALARS = st.one_of(st.integers(min_value=-(1 << 70), max_value=1 << 70), st.floats(allow_nan=True),
                    st.booleans(), st.text(max_size=20), st.sampled_from(["", "0", "-1", "fifo:10", "nice:5",
                                                                         "spin", "block", "BTCUSDT", "1e9"]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=8), inner, max_size=4), max_leaves=8)


@st.composite
def config_sections(draw: st.DrawFn) -> tuple[str, dict]:
    import msgspec

    types = _config_types()
    section = draw(st.sampled_from(sorted(types)))
    names = [f.encode_name for f in msgspec.structs.fields(types[section])]
    keys = draw(st.lists(st.sampled_from(names) | st.text(min_size=1, max_size=12), max_size=6))
    return section, {k: draw(VALUES) for k in keys}


def check_config(case: tuple[str, dict]) -> None:
    from procs.core.config import ConfigError, Section, convert

    section, data = case
    typ = _config_types()[section]
    where = f"fuzz.toml section [{section}]"
    try:
        cfg = convert(data, typ, where)
    except ConfigError as exc:
        assert where in str(exc), f"the error does not name the file and section: {exc}"
        return
    assert isinstance(cfg, typ) and isinstance(cfg, Section)


def check_config_text(text: str) -> None:
    from procs.core.config import ConfigError, load_section

    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(text)
    try:
        for section, typ in _config_types().items():
            try:
                load_section(f.name, section, typ)
            except ConfigError as exc:
                assert f.name in str(exc), f"the error does not name the file: {exc}"
    finally:
        os.unlink(f.name)


TOML_TEXT = st.one_of(st.text(max_size=200), st.builds(
    lambda sec, key, val: f"[{sec}]\n{key} = {val}\n",
    st.sampled_from(["execution", "strategy", "risk", "market_data", "sim", "riks", "sim_trading", "a.b"]),
    st.sampled_from(["fsync", "idle", "sched", "max_drawdown", "symbols", "x", "adopt_timeout_s"]),
    st.sampled_from(['"batch"', "1", "-1", "1e400", "nan", "[1, 2]", "{a = 1}", '"fifo:99"', "true", '"'])))


# -- control messages ----------------------------------------------------------------------------

def control_inputs() -> st.SearchStrategy:
    from procs.core import control as C

    command = st.one_of(
        st.builds(C.Reload, operator=st.text(max_size=20), target=st.text(max_size=20)),
        st.builds(C.CancelAll, operator=st.text(max_size=20), symbol=st.text(max_size=12)),
        st.builds(C.SetKillSwitch, operator=st.text(max_size=20), on=st.booleans()),
        st.builds(C.SetTradingState, operator=st.text(max_size=20), state=st.text(max_size=12)),
        st.builds(C.Shutdown, operator=st.text(max_size=20)), st.builds(C.Ping, operator=st.text(max_size=20)))
    return st.one_of(command, st.binary(max_size=200))


def check_control(message: Any) -> None:
    import msgspec

    from procs.core import control as C

    if isinstance(message, bytes):
        try:
            cmd = C.decode_command(message)
        except C.BadCommand as exc:
            assert str(exc), "a refused command must say why"
            return
        assert isinstance(cmd, C.Command)
        return
    raw = msgspec.msgpack.encode(message)
    assert C.decode_command(raw) == message


class ControlTarget:
    """Random messages on a real posix_ipc queue read by a ControlInbox."""

    def __init__(self) -> None:
        from procs.core.control import ControlInbox

        self.instance = f"fuzz{os.getpid()}"
        self.inbox = ControlInbox(self.instance, "fuzz")

    def close(self) -> None:
        self.inbox.close()

    def check(self, message: Any) -> None:
        import msgspec

        from procs.core.control import MAX_MESSAGE, Ping

        raw = message if isinstance(message, bytes) else msgspec.msgpack.encode(message)
        if len(raw) > MAX_MESSAGE or not raw:
            return  # the queue itself refuses these (send_command says so); nothing reaches the inbox
        bad = self.inbox.bad
        self.inbox.q.send(raw)
        self.inbox.q.send(msgspec.msgpack.encode(Ping(operator="after")))
        got = self.inbox.poll()
        assert got[-1] == Ping(operator="after"), "a good command after a bad one was not read"
        if len(got) == 2:
            assert self.inbox.bad == bad and (isinstance(message, bytes) or got[0] == message)
        else:
            assert len(got) == 1 and self.inbox.bad == bad + 1 and self.inbox.last_error, got


# -- the venue's messages --------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(1 << 70), 1 << 70) | st.floats() | st.text(max_size=12)
    | st.sampled_from(["0", "-1", "1e5", "NaN", "", " 1", "0.001", "-0.001", "60000.10", "1" * 30, "+1", ".5"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6)


def _slots(doc: Any, out: list) -> list:
    """Every (container, key) of a JSON document, depth first."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.append((doc, k))
            _slots(v, out)
    elif isinstance(doc, list):
        for k, v in enumerate(doc):
            out.append((doc, k))
            _slots(v, out)
    return out


@st.composite
def mutated_json(draw: st.DrawFn, samples: list[Any]) -> bytes:
    """A sample message with up to three of its values replaced, keys dropped or added, then
    maybe its text cut, a byte changed or garbage appended."""
    import copy

    import msgspec

    doc = copy.deepcopy(draw(st.sampled_from(samples)))
    for _ in range(draw(st.integers(0, 3))):
        slots = _slots(doc, [])
        if not slots:
            break
        container, key = draw(st.sampled_from(slots))
        op = draw(st.sampled_from(("replace", "replace", "drop", "add")))
        if op == "replace":
            container[key] = draw(JSON_VALUES)
        elif op == "drop":
            del container[key]
        elif isinstance(container, dict):
            container[draw(st.text(max_size=4))] = draw(JSON_VALUES)
        else:
            container.append(draw(JSON_VALUES))
    raw = msgspec.json.encode(doc)
    return _damaged(draw, raw)


def _damaged(draw: st.DrawFn, raw: bytes) -> bytes:
    damage = draw(st.sampled_from(("none", "none", "none", "cut", "flip", "append")))
    if damage == "cut" and raw:
        return raw[:draw(st.integers(0, len(raw) - 1))]
    if damage == "flip" and raw:
        i = draw(st.integers(0, len(raw) - 1))
        return raw[:i] + bytes([raw[i] ^ draw(st.integers(1, 255))]) + raw[i + 1:]
    if damage == "append":
        return raw + draw(st.binary(min_size=1, max_size=16))
    return raw


def _venue_target(kind: str) -> Target:
    from procs.venue.binance import fuzz as B

    return Target(f"venue_{kind}", lambda: mutated_json(B.SAMPLES[kind]), check=B.CHECKS[kind], per_example=8)


# -- market_data: recorded frames, damaged, through the feed handler -------------------------------

RECORDING = ROOT.parent / "shared" / "data" / "real" / "hftbacktest-binance" / "usdm" / "btcusdt_20240718.gz"
CORPUS_FRAMES = 3000


class FeedTarget:
    """market_data's FeedHandler (fast books, the venue's frame kernel) on a real shm instance,
    fed runs of a recording's frames of which some are damaged. It must never raise, and the book
    it publishes stays a book: prices strictly ordered away from the touch, every quantity > 0."""

    def __init__(self) -> None:
        from procs.core.registry import book_state_name, build_registry
        from procs.market_data.handler import FeedHandler
        from procs.market_data.publisher import Counter, Hist, Publisher
        from procs.venue.binance.market import MarketCodec
        from procs.venue.binance.recordings import iter_frames, recorded_instruments
        from shm.counters import Counters

        self.instance = f"fuzz{os.getpid()}md"
        self.symbol = "BTCUSDT"
        self.frames: list[tuple[str | None, bytes]] = []
        if RECORDING.exists():
            for f in iter_frames([RECORDING]):
                self.frames.append((f.snapshot_symbol, f.raw))
                if len(self.frames) >= CORPUS_FRAMES:
                    break
        else:  # no recordings here: the adapter's hand-made frames
            import msgspec

            from procs.venue.binance.fuzz import SAMPLES

            self.frames = [(self.symbol, msgspec.json.encode(s)) for s in SAMPLES["depth_snapshot"]]
            self.frames += [(None, msgspec.json.encode(s)) for s in SAMPLES["market_frame"]]
        reg = build_registry(20)
        self.pub = Publisher(reg, self.instance, [self.symbol])
        self.counters = Counters.create(self.instance, "market_data", Counter, Hist)
        self.handler = FeedHandler([self.symbol], recorded_instruments("usdm"), MarketCodec(raw_levels=True),
                                   self.pub, self.counters)
        self.state = reg.reader(self.instance, book_state_name(self.symbol))

    def close(self) -> None:
        from shm.inspect import clean

        self.state.close()
        self.pub.close()
        self.counters.close()
        clean(self.instance, force=True)

    def check(self, run: tuple[int, int, list[tuple[int, bytes]]]) -> None:
        from procs.market_data.publisher import read_book_state

        start, length, damaged = run
        frames = self.frames[start % len(self.frames):][:length]
        replace = {k % max(1, len(frames)): raw for k, raw in damaged}
        h = self.handler
        for k, (snapshot_symbol, raw) in enumerate(frames):
            raw = replace.get(k, raw)
            if snapshot_symbol:
                h.on_snapshot(snapshot_symbol, raw, time.monotonic_ns())
            else:
                h.on_frame(raw, time.monotonic_ns())
            book = read_book_state(self.state.read()[0], None)
            for side, sign in (("bids", -1), ("asks", 1)):
                levels = book[side]
                assert all(q > 0 for _, q in levels), f"{side} with a quantity <= 0: {levels[:5]}"
                assert all(sign * (b[0] - a[0]) > 0 for a, b in zip(levels, levels[1:], strict=False)), \
                    f"{side} out of order: {levels[:5]}"


@st.composite
def feed_runs(draw: st.DrawFn) -> tuple[int, int, list[tuple[int, bytes]]]:
    """(first frame, how many, [(index in the run, damaged frame)]): damaged frames are mutated
    sample messages or a recorded-like frame with bytes changed."""
    from procs.venue.binance.fuzz import SAMPLES

    damaged = draw(st.lists(st.tuples(st.integers(0, 63), mutated_json(SAMPLES["market_frame"]) | mutated_json(
        SAMPLES["depth_snapshot"])), max_size=4))
    return draw(st.integers(0, CORPUS_FRAMES)), draw(st.integers(1, 64)), damaged


# -- the table ---------------------------------------------------------------------------------------

@dataclass
class Target:
    name: str
    strategy: Callable[[], st.SearchStrategy]
    make: Callable[[], Any] | None = None  # a resource (ring instance, queue, simulator) the check uses
    check: Callable[..., None] | None = None  # check(value) or check(resource, value)
    per_example: int = 4  # inputs per hypothesis example: its fixed cost is shared (a failure shrinks to one)


def _targets() -> dict[str, Target]:
    from procs.exchange_sim import fuzz as S
    from procs.venue.binance.fuzz import CHECKS

    return {t.name: t for t in (
        *(_venue_target(kind) for kind in CHECKS),
        Target("market_data", feed_runs, make=FeedTarget, check=FeedTarget.check, per_example=1),
        Target("journal", damaged_journal, check=check_journal),
        Target("ring", ring_programs, make=RingTarget, check=RingTarget.check),
        Target("config", config_sections, check=check_config),
        Target("config_text", lambda: TOML_TEXT, check=check_config_text),
        Target("control", control_inputs, check=check_control),
        Target("control_queue", control_inputs, make=ControlTarget, check=ControlTarget.check),
        *(Target(name, strategy, make=make, check=check) for name, strategy, make, check in S.TARGETS),
    )}


TARGETS = _targets()
