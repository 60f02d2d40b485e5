"""Helper run as a child: drop to an unprivileged user, fork a sleeper, apply SCHED_FIFO to it.

Prints the outcomes as JSON. Used to show that a refused SCHED_FIFO is reported, not raised.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import time

from procs.tools.affinity.apply import apply_placement
from procs.tools.affinity.layout import Placement

if os.geteuid() == 0:
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)  # also drops every capability, CAP_SYS_NICE included
resource.setrlimit(resource.RLIMIT_RTPRIO, (0, 0))
pid = os.fork()  # not exec: the interpreter may live under a directory this user cannot enter
if pid == 0:
    time.sleep(60)
    os._exit(0)
try:
    p = Placement(name="strategy", role="hot", section="strategy", cpus=(0,), idle="backoff",
                  policy="fifo", priority=10)
    out = apply_placement(p, pid)
    print(json.dumps({"pid": pid, "uid": os.getuid(), "affinity": sorted(os.sched_getaffinity(pid)),
                      "policy": os.sched_getscheduler(pid), "outcomes": [o.to_dict() for o in out]}))
finally:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
