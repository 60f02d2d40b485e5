"""Control queues: a command round-trips through a real posix queue; one over the queue's message
size is refused by the sender with its size (the queue's size is kept small: the kernel charges
every queue of every instance against one per-user limit)."""

from __future__ import annotations

import pytest

from procs.core import control as C


def test_send_command_when_small_then_received_and_when_too_large_then_refused_with_its_size(instance: str) -> None:
    inbox = C.ControlInbox(instance, "risk")
    try:
        C.send_command(instance, "risk", C.SetKillSwitch(on=True, operator="ann"))
        assert inbox.poll() == [C.SetKillSwitch(on=True, operator="ann")]
        with pytest.raises(ValueError, match=rf"control command too large: \d+ bytes > {C.MAX_MESSAGE} \(Reload\)"):
            C.send_command(instance, "risk", C.Reload(target="x" * 2000))
        assert inbox.poll() == []
    finally:
        inbox.close()
