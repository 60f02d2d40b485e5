"""Control commands between processes: msgspec Structs, msgpack-encoded, one posix_ipc
MessageQueue per receiving process (``/b25.<instance>.ctl.<proc>``, mode 0600).

Commands are imperative (``Reload``, ``CancelAll``, ``SetKillSwitch``, ...). The receiver polls
``ControlInbox.poll()`` from its loop (non-blocking); senders use ``send_command``. A command
that fails to decode is counted and logged by the receiver, never raised into its loop.
"""

from __future__ import annotations

import msgspec
import posix_ipc

from procs.core import log
from shm.segment import shm_name

# The kernel charges each queue max_messages * max_message_size against the user's 800 KB
# RLIMIT_MSGQUEUE (ulimit -q), for every b25 process of every instance on the host: at 8 KiB a
# message only 9 queues fit (two test stacks at once failed with EMFILE); a command is < 200 bytes.
MAX_MESSAGE = 1024


class Command(msgspec.Struct, tag=True, frozen=True, kw_only=True):
    operator: str = ""  # who asked (the TUI user, "ops-api", "risk"), for the audit log line


class Reload(Command):
    """Reload the process's config section from its file (strategy: and changed strategy code)."""

    target: str = ""  # a strategy id, or "" for all
    reason: str = ""  # why, kept with the config version (procs.core.versions)
    source: str = ""  # "ops_api" | "tui" | "cli" | "" (the file, or SIGHUP)


class CancelAll(Command):
    symbol: str = ""  # "" = every symbol


class SetKillSwitch(Command):
    """HALTED when on; turning it off needs an operator (risk refuses an empty one)."""

    on: bool


class SetTradingState(Command):
    state: str  # "ACTIVE" | "REDUCING" | "HALTED"


class Shutdown(Command):
    pass


class Ping(Command):
    pass


AnyCommand = Reload | CancelAll | SetKillSwitch | SetTradingState | Shutdown | Ping
_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder(AnyCommand)


class BadCommand(ValueError):
    """A control message that is not a command; the message says what is wrong with it."""


def decode_command(raw: bytes) -> AnyCommand:
    """One control message; BadCommand (naming its size and the reason) when it is not a command."""
    try:
        return _dec.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise BadCommand(f"not a control command ({len(raw)} bytes): {exc}") from None


def queue_name(instance: str, proc: str) -> str:
    return shm_name(instance, f"ctl.{proc}")


class ControlInbox:
    """The receiving process's queue; ``poll()`` returns decoded commands (never blocks)."""

    def __init__(self, instance: str, proc: str) -> None:
        self.name = queue_name(instance, proc)
        self.q = posix_ipc.MessageQueue(self.name, posix_ipc.O_CREAT, mode=0o600, max_messages=10,  # the default kernel limit (fs.mqueue.msg_max)
                                        max_message_size=MAX_MESSAGE)
        self.q.block = False
        self.bad = 0
        self.last_error = ""

    def poll(self, limit: int = 16) -> list[AnyCommand]:
        out: list[AnyCommand] = []
        for _ in range(limit):
            try:
                raw, _prio = self.q.receive(0)
            except posix_ipc.BusyError:
                break
            try:
                out.append(decode_command(raw))
            except BadCommand as exc:  # counted and logged once per queue; the next one is read
                self.bad += 1
                self.last_error = str(exc)
                log.once(f"control_refused:{self.name}", "warn", "control_message_refused", queue=self.name,
                         reason=self.last_error[:200], count="bad_control counts the rest")
        return out

    def close(self, unlink: bool = True) -> None:
        self.q.close()
        if unlink:
            try:
                posix_ipc.unlink_message_queue(self.name)
            except posix_ipc.ExistentialError:
                pass


def send_command(instance: str, proc: str, cmd: Command, timeout: float = 1.0) -> None:
    """Send one command; raises FileNotFoundError when the process has no inbox (not running)."""
    try:
        q = posix_ipc.MessageQueue(queue_name(instance, proc))
    except posix_ipc.ExistentialError:
        raise FileNotFoundError(f"process has no control queue (not running?): proc={proc} "
                                f"queue={queue_name(instance, proc)}") from None
    raw = _enc.encode(cmd)
    if len(raw) > MAX_MESSAGE:
        q.close()
        raise ValueError(f"control command too large: {len(raw)} bytes > {MAX_MESSAGE} ({type(cmd).__name__})")
    try:
        q.send(raw, timeout=timeout)
    finally:
        q.close()


def unlink_queues(instance: str, procs: tuple[str, ...]) -> list[str]:
    """Remove the control queues of ``procs`` (``b25 shm clean``; /dev/mqueue is not listable here)."""
    removed = []
    for p in procs:
        try:
            posix_ipc.unlink_message_queue(queue_name(instance, p))
            removed.append(queue_name(instance, p))
        except posix_ipc.ExistentialError:
            pass
    return removed
