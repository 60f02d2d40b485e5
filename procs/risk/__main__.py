"""risk: positions, P&L, limits, trading state and reconciliation; writes ``risk.state``.

``python -m procs.risk [--config F] [--instance NAME] [--rest-url URL]`` — consumes ``exec`` and
``md.book`` as the named consumer ``risk``, writes the ``risk.state`` SeqLock block that
execution checks in line, publishes alerts to ``alerts.risk`` and takes control commands
(SetKillSwitch, SetTradingState, Reload, CancelAll, Shutdown, Ping) on its queue. The logic is
``procs.risk``; API keys come from ``[risk]`` or B25_API_KEY / B25_API_SECRET.
"""

from __future__ import annotations

import argparse
import sys

import msgspec

from procs.core import deploy, log
from procs.core.agent import StopFlag, install_signal_stop, pin_cpu, run_agent
from procs.core.config import ConfigError, config_hash, load_section
from procs.core.credentials import load_credentials
from procs.core.status import State, StatusWriter
from procs.risk.agent import PROC, RiskAgent, load_instruments
from procs.risk.config import RiskConfig
from shm.idle import make_idle
from shm.segment import DEFAULT_INSTANCE


def run(config: str | None, instance: str, rest_url: str | None = None) -> int:
    try:
        cfg = load_section(config, "risk", RiskConfig)
        symbols, depth = deploy.symbols(config), deploy.depth(config)
    except ConfigError as exc:
        print(f"risk: {exc}", file=sys.stderr)
        return 2
    if rest_url:
        cfg = msgspec.structs.replace(cfg, rest_url=rest_url)
    key = secret = ""
    if cfg.reconcile:
        try:
            key, secret = load_credentials(section="risk", rest_url=cfg.rest_url, api_key=cfg.api_key,
                                           api_secret=cfg.api_secret, secrets_file=cfg.secrets_file)
        except ValueError as exc:
            print(f"risk: reconcile = true needs credentials: {exc}", file=sys.stderr)
            return 2
    cpu = pin_cpu(cfg.cpu)
    status = StatusWriter(instance, PROC, cpu, config_hash(config))
    early = StopFlag()  # SIGTERM while waiting for exchangeInfo is still a clean stop
    install_signal_stop(early)
    try:
        instruments = load_instruments(cfg, symbols, lambda: early.stop)
    except (ConfigError, ValueError, OSError) as exc:
        log.error("risk_start_failed", reason=str(exc))
        status.set_state(State.FAILED)
        status.close()
        return 2
    if instruments is None or early.stop:
        status.set_state(State.STOPPED)
        status.close()
        return 0
    try:
        agent = RiskAgent(cfg, instance, instruments, depth, config, key, secret)
    except ValueError as exc:  # limits the instruments cannot represent
        log.error("risk_start_failed", reason=str(exc))
        status.set_state(State.FAILED)
        status.close()
        return 2
    rc = run_agent(agent, make_idle(cfg.idle, agent.waiter), status, on_heartbeat=agent.heartbeat)
    status.close()
    return rc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="risk", description=__doc__)
    ap.add_argument("--config", default=None)
    ap.add_argument("--instance", default=DEFAULT_INSTANCE)
    ap.add_argument("--rest-url", default=None)
    a = ap.parse_args(argv)
    log.set_process(PROC)
    return run(a.config, a.instance, a.rest_url)


if __name__ == "__main__":
    sys.exit(main())
