"""The inputs ``b25 fuzz`` generates and the properties they must keep: each target's generator
(written against ``Draw``, so hypothesis or ``random`` can drive it: procs/tools/reliability/draw.py)
and its check. The table of targets is in procs/tools/reliability/fuzz.py."""


from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import msgspec

from .draw import Draw, json_value

ROOT = Path(__file__).resolve().parents[3]  # the checkout: the real recordings are beside it (../shared)

# -- the journal ---------------------------------------------------------------------------------

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


def damaged_journal(d: Draw) -> tuple[list, bytes, int]:
    """(records, file bytes, how many records are intact): whole frames, then a damaged tail. What
    a record holds does not matter to the reader's property, so the records come from a seed
    (cheap); the draw chooses the shape and the damage."""
    from procs.execution.journal import Journal

    records = _records_from_seed(d.integer(0, 1 << 32), d.integer(0, 12))
    frames = [bytes(_frame(Journal, r)) for r in records]
    data = b"".join(frames)
    damage = d.choice(("none", "cut", "flip", "garbage", "zeros", "unchecked"))
    intact = len(records)
    if damage == "cut" and frames:  # a torn last frame: some of its bytes never written
        last = frames[-1]
        data = data[:len(data) - len(last) + d.integer(0, len(last) - 1)]
        intact -= 1
    elif damage == "flip" and frames:  # bytes of the last frame changed (a host crash, a bad sector)
        last = bytearray(frames[-1])
        for _ in range(d.integer(1, 4)):
            i = d.integer(0, len(last) - 1)
            last[i] ^= d.integer(1, 255)
        data = data[:len(data) - len(last)] + bytes(last)
        intact -= 1
    elif damage == "garbage" and frames:
        # (a file whose first frame is unchecked reads as a journal from before the checksum:
        # garbage alone cannot be told from one, so the damage follows a checked frame, as in
        # every journal written now)
        data += d.binary(64, min_size=1)
    elif damage == "zeros":  # the preallocated tail of an open journal
        data += bytes(d.integer(1, 64))
    elif damage == "unchecked" and frames:  # an old-style (unchecked) frame after checked ones: not a record
        payload = msgspec.msgpack.encode(_records_from_seed(d.integer(0, 1 << 32), 1)[0])
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

def ring_program(d: Draw) -> tuple[str, int, list]:
    """(policy, capacity, operations): publishes, and each of three readers' polls and reads."""
    policy, capacity = d.choice(("gating", "broadcast")), d.choice((4, 8, 16))
    ops: list[tuple] = []
    for _ in range(d.integer(0, 60)):
        kind = d.choice(("publish", "poll", "poll_one", "read_one"))
        if kind == "publish":
            ops.append((kind, d.integer(1, 20)))
        elif kind == "poll":
            ops.append((kind, d.integer(0, 2), d.integer(0, 12)))
        else:
            ops.append((kind, d.integer(0, 2)))
    return policy, capacity, ops


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

@cache
def _config_types() -> dict[str, type]:
    from procs.core import services
    from procs.exchange_sim.trading.config import TradingConfig

    out: dict[str, type] = {}
    for section, path in services.section_types().items():
        module, _, cls = path.partition(":")
        out[section] = getattr(__import__(module, fromlist=[cls]), cls)
    out["sim_trading"] = TradingConfig
    return out


CONFIG_TEXTS = ("", "0", "-1", "fifo:10", "nice:5", "spin", "block", "BTCUSDT", "1e9")


@cache
def _field_names(section: str) -> list[str]:
    return [f.encode_name for f in msgspec.structs.fields(_config_types()[section])]


def config_section(d: Draw) -> tuple[str, dict]:
    """A section of any config type with its own fields and unknown ones, holding any value."""
    section = d.choice(sorted(_config_types()))
    names = _field_names(section)
    keys = [d.choice(names) if d.choice((True, False)) else d.text(12, min_size=1) for _ in range(d.integer(0, 6))]
    return section, {k: json_value(d, CONFIG_TEXTS) for k in keys}


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


def toml_text(d: Draw) -> str:
    """Any text, or one line of a known or misspelt section with a known key and an odd value."""
    if d.choice((True, False)):
        return d.text(200)
    section = d.choice(("execution", "strategy", "risk", "market_data", "sim", "riks", "sim_trading", "a.b"))
    key = d.choice(("fsync", "idle", "sched", "max_drawdown", "symbols", "x", "adopt_timeout_s"))
    value = d.choice(('"batch"', "1", "-1", "1e400", "nan", "[1, 2]", "{a = 1}", '"fifo:99"', "true", '"'))
    return f"[{section}]\n{key} = {value}\n"


# -- control messages ----------------------------------------------------------------------------

def control_input(d: Draw) -> Any:
    """A command of every kind with any texts, or any bytes."""
    from procs.core import control as C

    kind = d.choice(("bytes", "Reload", "CancelAll", "SetKillSwitch", "SetTradingState", "Shutdown", "Ping"))
    if kind == "bytes":
        return d.binary(200)
    operator = d.text(20)
    if kind == "Reload":
        return C.Reload(operator=operator, target=d.text(20))
    if kind == "CancelAll":
        return C.CancelAll(operator=operator, symbol=d.text(12))
    if kind == "SetKillSwitch":
        return C.SetKillSwitch(operator=operator, on=d.choice((True, False)))
    if kind == "SetTradingState":
        return C.SetTradingState(operator=operator, state=d.text(12))
    return C.Shutdown(operator=operator) if kind == "Shutdown" else C.Ping(operator=operator)


def check_control(message: Any) -> None:
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

NUMBER_TEXTS = ("0", "-1", "1e5", "NaN", "", " 1", "0.001", "-0.001", "60000.10", "1" * 30, "+1", ".5")


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


@cache
def _encoded_samples(kind: str) -> list[bytes]:
    from procs.venue.binance.fuzz import SAMPLES

    return [msgspec.json.encode(s) for s in SAMPLES[kind]]


def mutated_json(d: Draw, kind: str) -> bytes:
    """A sample message of ``kind`` with up to three of its values replaced, keys dropped or
    added, then maybe its text cut, a byte changed or garbage appended."""
    doc = msgspec.json.decode(d.choice(_encoded_samples(kind)))  # a fresh copy of the sample
    for _ in range(d.integer(0, 3)):
        slots = _slots(doc, [])
        if not slots:
            break
        container, key = d.choice(slots)
        op = d.choice(("replace", "replace", "drop", "add"))
        if op == "replace":
            container[key] = json_value(d, NUMBER_TEXTS)
        elif op == "drop":
            del container[key]
        elif isinstance(container, dict):
            container[d.text(4)] = json_value(d, NUMBER_TEXTS)
        else:
            container.append(json_value(d, NUMBER_TEXTS))
    return _damaged(d, msgspec.json.encode(doc))


def _damaged(d: Draw, raw: bytes) -> bytes:
    damage = d.choice(("none", "none", "none", "cut", "flip", "append"))
    if damage == "cut" and raw:
        return raw[:d.integer(0, len(raw) - 1)]
    if damage == "flip" and raw:
        i = d.integer(0, len(raw) - 1)
        return raw[:i] + bytes([raw[i] ^ d.integer(1, 255)]) + raw[i + 1:]
    if damage == "append":
        return raw + d.binary(16, min_size=1)
    return raw


def _venue_target(kind: str) -> Target:
    from procs.venue.binance import fuzz as B

    return Target(f"venue_{kind}", lambda d: mutated_json(d, kind), check=B.CHECKS[kind], per_example=8)


# -- market_data: recorded frames, damaged, through the feed handler -------------------------------

RECORDING = ROOT.parent / "shared" / "data" / "real" / "hftbacktest-binance" / "usdm" / "btcusdt_20240718.gz"
CORPUS_FRAMES = 3000
CHECKPOINT_EVERY = 25  # a snapshot of the true book every this many applied depth frames: where runs begin
RUN_FRAMES = 64  # the longest run
PUBLISHED_DEPTH = 20  # the levels a side the target's registry publishes


class FeedTarget:
    """market_data's FeedHandler (fast books, the venue's frame kernel) on a real shm instance.
    Each run starts as a live start does: a REST snapshot (the recording's own book at one of its
    checkpoints), then the recording's frames from there, some of them (or the snapshot) damaged.

    The properties: it never raises; the book it publishes stays a book (prices strictly ordered
    away from the touch, every quantity > 0); and a run without damage publishes, after its last
    frame, exactly the book of the in-order replay after that frame. The in-order replay, and the
    checkpoints' snapshots, come from the reference ``Book`` (procs/book/book.py, exact on every
    recording), not from the fast book under test.
    ``synced_runs`` and ``exact_runs`` count the runs in which a book was published and compared:
    a run that never syncs checks nothing, and the tests hold those counts up."""

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
        self.checkpoints: list[tuple[int, bytes]] = []  # (the frame a run begins with, the snapshot before it)
        self.expected: list[tuple[list, list] | None] = []  # the true book after each frame, in order
        if RECORDING.exists():
            recorded = []
            for f in iter_frames([RECORDING]):
                recorded.append(f)
                if len(recorded) >= CORPUS_FRAMES:
                    break
            self.frames = [(f.snapshot_symbol, f.raw) for f in recorded]
            self._replay_in_order(recorded)
        else:  # no recordings here: the adapter's hand-made frames
            from procs.venue.binance.fuzz import SAMPLES

            self.frames = [(self.symbol, msgspec.json.encode(s)) for s in SAMPLES["depth_snapshot"]]
            self.frames += [(None, msgspec.json.encode(s)) for s in SAMPLES["market_frame"]]
            self.checkpoints = [(1, self.frames[0][1])]  # their own snapshot, and no oracle
            self.expected = [None] * len(self.frames)
        reg = build_registry(PUBLISHED_DEPTH)
        self.pub = Publisher(reg, self.instance, [self.symbol])
        self.counters = Counters.create(self.instance, "market_data", Counter, Hist)
        self.handler = FeedHandler([self.symbol], recorded_instruments("usdm"), MarketCodec(raw_levels=True),
                                   self.pub, self.counters)
        self.state = reg.reader(self.instance, book_state_name(self.symbol))
        self.applied = Counter.DEPTH_APPLIED
        self.synced_runs = self.exact_runs = 0

    def _book(self) -> dict:
        from procs.market_data.publisher import read_book_state

        return read_book_state(self.state.read()[0], None)

    def _check_book(self) -> None:
        """The published book is a book: prices strictly ordered away from the touch, every
        quantity > 0."""
        r = self.state.read()[0][0]
        for side, n, sign in (("bid", int(r["n_bids"]), -1), ("ask", int(r["n_asks"]), 1)):
            px, qty = r[f"{side}_px"][:n].tolist(), r[f"{side}_qty"][:n].tolist()
            if min(qty, default=1) <= 0 or not all(sign * (b - a) > 0 for a, b in zip(px, px[1:], strict=False)):
                raise AssertionError(f"{side}s out of order or with a quantity <= 0: {list(zip(px, qty, strict=True))[:5]}")

    def _feed(self, snapshot_symbol: str | None, raw: bytes) -> None:
        if snapshot_symbol:
            self.handler.on_snapshot(snapshot_symbol, raw, time.monotonic_ns())
        else:
            self.handler.on_frame(raw, time.monotonic_ns())

    def _replay_in_order(self, recorded: list) -> None:
        """The recording's frames in order through the reference book: the true book after each
        frame (the oracle), and a snapshot of the whole book every CHECKPOINT_EVERY applied diffs.
        A snapshot whose last update id is the last applied diff's is bridged by that same diff
        (first id <= it <= last id), which sets absolute quantities and so changes nothing when
        applied again."""
        from procs.book.rebuild import Rebuilder
        from procs.book.sync import SyncState
        from procs.venue.binance.fuzz import depth_snapshot_body
        from procs.venue.binance.market import MarketCodec
        from procs.venue.binance.recordings import recorded_instruments

        applied = 0

        def count(_sync: Any, _diff: Any) -> None:
            nonlocal applied
            applied += 1

        reference = Rebuilder(MarketCodec(), recorded_instruments, symbols={self.symbol}, on_applied=count)
        for k, frame in enumerate(recorded):
            before = applied
            reference.feed(frame)
            sync = reference.syncs.get(self.symbol)
            live = sync is not None and sync.book is not None and sync.state == SyncState.LIVE
            self.expected.append((sync.book.bid_levels(PUBLISHED_DEPTH), sync.book.ask_levels(PUBLISHED_DEPTH))
                                 if live else None)
            if live and not frame.snapshot_symbol and applied > before and applied % CHECKPOINT_EVERY == 1:
                bids, asks = sync.book.top_text(len(sync.book))
                self.checkpoints.append((k, depth_snapshot_body(sync.last_u, bids, asks)))

    def close(self) -> None:
        from shm.inspect import clean

        self.state.close()
        self.pub.close()
        self.counters.close()
        clean(self.instance, force=True)

    def check(self, run: tuple[int, int, list[tuple[int, bytes]]]) -> None:
        checkpoint, length, damaged = run
        first, snapshot = self.checkpoints[checkpoint % len(self.checkpoints)]
        frames = self.frames[first:first + length]
        replace = {k % (len(frames) + 1) - 1: raw for k, raw in damaged}  # -1: the snapshot
        h = self.handler
        h.reset_symbol(self.symbol)
        applied = self.counters.get(self.applied)
        h.on_snapshot(self.symbol, replace.get(-1, snapshot), time.monotonic_ns())
        self._check_book()
        published = applied
        for k, (snapshot_symbol, raw) in enumerate(frames):
            self._feed(snapshot_symbol, replace.get(k, raw))
            if self.counters.get(self.applied) != published:  # a book was published: check it
                published = self.counters.get(self.applied)
                self._check_book()
        if self.counters.get(self.applied) > applied:
            self.synced_runs += 1
        expected = self.expected[first + len(frames) - 1]
        if not damaged and expected is not None:
            book = self._book()
            assert (book["bids"], book["asks"]) == expected, (
                f"after frames {first}..{first + len(frames) - 1} undamaged the book is not the recording's: "
                f"bids {book['bids'][:3]} asks {book['asks'][:3]}, expected bids {expected[0][:3]} asks {expected[1][:3]}")
            self.exact_runs += 1


def feed_run(d: Draw) -> tuple[int, int, list[tuple[int, bytes]]]:
    """(checkpoint, how many frames, [(where in the run, damaged frame)]): damaged frames are
    mutated sample market frames or depth snapshots; where 0 is the snapshot itself."""
    damaged = [(d.integer(0, RUN_FRAMES), mutated_json(d, d.choice(("market_frame", "depth_snapshot"))))
               for _ in range(d.integer(0, 4))]
    return d.integer(0, 1 << 16), d.integer(1, RUN_FRAMES), damaged


# -- the table ---------------------------------------------------------------------------------------

@dataclass
class Target:
    name: str
    generate: Callable[[Draw], Any]  # one input from the draw's choices
    make: Callable[[], Any] | None = None  # a resource (ring instance, queue, simulator) the check uses
    check: Callable[..., None] | None = None  # check(value) or check(resource, value)
    per_example: int = 4  # inputs per hypothesis example: its fixed cost is shared (a failure shrinks to one)


def _targets() -> dict[str, Target]:
    from procs.exchange_sim import fuzz as S
    from procs.venue.binance.fuzz import CHECKS

    return {t.name: t for t in (
        *(_venue_target(kind) for kind in CHECKS),
        Target("market_data", feed_run, make=FeedTarget, check=FeedTarget.check, per_example=1),
        Target("journal", damaged_journal, check=check_journal),
        Target("ring", ring_program, make=RingTarget, check=RingTarget.check),
        Target("config", config_section, check=check_config),
        Target("config_text", toml_text, check=check_config_text),
        Target("control", control_input, check=check_control),
        Target("control_queue", control_input, make=ControlTarget, check=ControlTarget.check),
        *(Target(name, generate, make=make, check=check) for name, generate, make, check in S.TARGETS),
    )}


TARGETS = _targets()
