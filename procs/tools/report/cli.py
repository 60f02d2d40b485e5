"""``b25 report [--journal FILE | --run DIR] [--from T --to T] [--json] [--html DIR]``.

Where the journal and the session's facts come from:

* ``--run DIR`` with a ``session.json`` (a ``b25 replay`` or ``b25 backtest`` report folder): its
  ``execution.journal`` and the session recorded beside it (symbols, instruments, strategy names,
  capital, the recorded book's final mid as the mark).
* ``--run DIR`` with a ``b25.toml`` (a Stack run directory) or ``--journal FILE`` with ``--config F``
  (default ``b25.toml``; a live deployment): symbols, strategy names and ``[risk] capital`` from the
  config, instruments from ``--exchange-info FILE`` (the venue's format), else the ``[venue]``
  section's (its ``exchange_info`` file, else asked at its ``rest_url``); the marks from the running instance's
  ``risk.state`` (``--instance``), else each symbol's last fill price. Without ``--journal`` the
  config's ``[execution] journal`` is read.

Exit status: 0, or 2 for bad arguments or a journal or session that cannot be read (the reason
names the file and field).
"""

from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from shm.segment import DEFAULT_INSTANCE


class ReportError(Exception):
    pass


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--journal", type=Path, default=None, metavar="FILE", help="execution's journal")
    src.add_argument("--run", type=Path, default=None, metavar="DIR",
                     help="a replay/backtest report folder (session.json) or a Stack run dir (b25.toml)")
    parser.add_argument("--config", default=None, help="deployment TOML for a live journal (default: b25.toml)")
    parser.add_argument("--instance", default=DEFAULT_INSTANCE, help="live marks from this instance's risk.state")
    parser.add_argument("--exchange-info", type=Path, default=None, metavar="FILE", help="instruments from this file")
    parser.add_argument("--capital", default=None, help="quote capital for returns and % figures (over the config's)")
    parser.add_argument("--from", dest="start", default=None, metavar="T", help="session time, ISO 8601 (UTC) or ms")
    parser.add_argument("--to", dest="end", default=None, metavar="T", help="session time, ISO 8601 (UTC) or ms")
    parser.add_argument("--json", action="store_true", help="every figure as JSON")
    parser.add_argument("--html", type=Path, default=None, metavar="DIR", help="write DIR/report.html (self-contained)")


def _instruments(cfg_path: str | None, exchange_info: Path | None, symbols: list[str]) -> dict[str, dict]:
    from procs.venue.adapters import open_venue, venue_config

    try:
        venue = open_venue(venue_config(cfg_path))
        info = venue.read_info(exchange_info) if exchange_info is not None else venue.info(attempts=1, timeout_s=5.0)
    except (OSError, ValueError) as exc:
        raise ReportError(f"instruments: cannot read the venue's instrument list ({exc}); "
                          "pass --exchange-info FILE") from None
    assert info is not None  # attempts=1: an answer or an error
    by = info.instruments
    missing = [s for s in symbols if s not in by]
    if missing:
        raise ReportError(f"instruments: symbols not listed by the venue: {','.join(missing)}")
    return {s: {"price_scale": by[s].price_scale, "qty_scale": by[s].qty_scale,
                "contract_size": str(by[s].contract_size)} for s in symbols}


def live_marks(instance: str, symbols: list[str], instruments: dict[str, dict], depth: int) -> dict[str, Decimal]:
    """The marks risk publishes in ``risk.state`` (empty when the instance is not running)."""
    from procs.core import messages as M
    from procs.core.registry import RISK_STATE
    from procs.monitor.shmview import StateView

    view = StateView(instance, RISK_STATE, M.RiskState)
    try:
        got = view.read()
    finally:
        view.close()
    if got is None:
        return {}
    r = got[0][0]
    out = {}
    for i, s in enumerate(symbols[: M.MAX_SYMBOLS]):
        ticks = int(r["mark"][i])
        if ticks > 0 and s in instruments:
            out[s] = Decimal(ticks).scaleb(-int(instruments[s]["price_scale"]))
    return out


def session_from_config(cfg_path: str | None, args: argparse.Namespace) -> Any:
    from procs.core.config import ConfigError, load_section
    from procs.core.deploy import depth, symbols
    from procs.risk.config import RiskConfig
    from procs.strategy.config import strategy_names
    from procs.tools.report.metrics import Session

    try:
        syms = symbols(cfg_path)
        names = strategy_names(cfg_path)
        capital = Decimal(load_section(cfg_path, "risk", RiskConfig).capital)
        instruments = _instruments(cfg_path, args.exchange_info, syms)
        marks = live_marks(args.instance, syms, instruments, depth(cfg_path))
    except ConfigError as exc:
        raise ReportError(str(exc)) from None
    return Session(syms, instruments, names, capital, marks, "risk.state" if marks else "last fill price", "live")


def journal_from_config(cfg_path: str | None, instance: str) -> Path:
    """``[execution] journal``, else execution's default path for the instance. (A journal that
    execution compacted at a start holds the orders since; the archived one is beside it.)"""
    from procs.core.config import load_section
    from procs.execution.config import ExecutionConfig
    from procs.execution.journal import default_path

    cfg = load_section(cfg_path, "execution", ExecutionConfig)
    return Path(cfg.journal or default_path(instance))


def load(args: argparse.Namespace) -> tuple[list, Any, str]:
    """(journal records, Session, journal path) for the arguments."""
    from procs.execution.journal import read_journal
    from procs.tools.report.metrics import Session

    if args.run is not None:
        if (args.run / "session.json").is_file():
            path = args.run / "execution.journal"
            try:
                session = Session.from_json(json.loads((args.run / "session.json").read_text()))
            except (ValueError, KeyError) as exc:
                raise ReportError(f"bad session file {args.run / 'session.json'}: {exc!r}") from None
        elif (args.run / "b25.toml").is_file():
            cfg = str(args.run / "b25.toml")
            session = session_from_config(cfg, args)
            path = args.run / "journal" / "execution.journal"
            if not path.is_file():
                path = journal_from_config(cfg, args.instance)
        else:
            raise ReportError(f"--run {args.run}: neither session.json nor b25.toml there")
    else:
        cfg = args.config or ("b25.toml" if Path("b25.toml").is_file() else None)
        path = args.journal or journal_from_config(cfg, args.instance)
        session = session_from_config(cfg, args)
    if not Path(path).is_file():
        raise ReportError(f"journal not found: {path}")
    records, _ = read_journal(path)
    if args.capital is not None:
        try:
            session.capital = Decimal(args.capital)
        except ArithmeticError:
            raise ReportError(f"--capital must be a decimal: capital={args.capital!r}") from None
    return records, session, str(path)


def run(args: argparse.Namespace) -> int:
    from procs.tools.bars import parse_time_ms
    from procs.tools.report.metrics import build_report
    from procs.tools.report.render import text, write_html

    try:
        start = parse_time_ms(args.start) * 1_000_000 if args.start else None
        end = parse_time_ms(args.end) * 1_000_000 if args.end else None
        records, session, path = load(args)
    except (ReportError, ValueError) as exc:
        print(f"b25 report: {exc}", file=sys.stderr)
        return 2
    series: dict[str, Any] = {}
    rep = build_report(records, session, start, end, series)
    rep["journal"] = path
    if args.html is not None:
        out = write_html(rep, series, args.html, f"b25 report: {Path(path).name}")
        rep["html"] = str(out)
    if args.json:
        print(json.dumps(rep))
    else:
        print(text(rep))
        if "html" in rep:
            print(f"html {rep['html']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="b25 report", description=__doc__.splitlines()[0])
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
