"""The replay harness: a strategy on recorded data through the real processes (``b25 replay``).

``procs.tools.replay.run.replay(ReplayOptions(...))`` starts an isolated ``procs.tools.stack.Stack`` —
exchange_sim replaying the recording, market_data, risk, execution and the strategy, on a fresh
shm instance with free ports and a generated config — drives the recording through and stops
everything (also on Ctrl-C, SIGTERM or failure). ``summary`` turns what it left behind into
orders, fills, fees, P&L, drawdown, latency and the journal's hash; ``report`` writes the
folder (summary.json, the journal, PNG plots); ``cli`` is the command.

Modes: ``lockstep`` (deterministic), ``speed`` (recorded pace times X), ``max`` (as fast as
market_data reads). In every mode the simulator starts paused and is resumed only when every
process is RUNNING and every named consumer is attached to its rings, so no event is missed.

Simulated time
--------------
exchange_sim (``[sim] sim_clock``) owns a one-record state block ``sim.clock``
(procs/core/simclock.py) holding the recorded receive time of the frame being served. Each
process reads its clock from it in a replay, behind a flag that is off live:
``[strategy] sim_clock`` (timers, cooldowns, ``api.now_ns()``; client tags start at 0),
``[execution] sim_clock`` (the order-rate window; acknowledgements stamped with the
exchange's time of the order's state), ``[risk] sim_clock`` (the UTC day of the daily-loss limit). The
simulator's own market clock already follows the recording. Execution's client order ids are
``b25-<epoch>-<n>`` with the epoch of a fresh journal (1). Host time remains only in latency
stamps, housekeeping and the journal's ``wall_ns``/``ts_intent``, which the hash leaves out.

The lockstep protocol
---------------------
With ``[sim] lockstep = true`` the simulator runs a simulated clock with an event queue
(procs/exchange_sim/eventclock.py; the latencies of ``[sim.latency]``, procs/exchange_sim/latency.py)::

    loop:
        barrier.wait(now)         # everything so far is consumed, answered and sent to us
        next = the earliest event (or a strategy timer's deadline, if earlier)
        sim.clock = next.t        # the clock moves only now, never under work
        barrier.wait(next.t)      # strategy timers due by then fire (and are answered) first
        handle next               # APPLY a frame, ARRIVE a request, DELIVER an answer, MARKET data

and when the queue is empty after the last frame it reports ``finished`` in ``GET /sim/stats``.
``barrier.wait`` runs on the simulator's event loop (which keeps receiving the orders the
pipeline sends meanwhile: they are queued at the current time plus their entry latency) and
needs no message from anyone: it reads shm counters and ring cursors — market_data's frames
handled vs. frames the simulator sent and its pending snapshots; the strategy's and risk's
handled positions on md.book/md.trade/exec vs. the write cursors; execution's intake cursor, its
pending-request gauge vs. the requests the simulator holds, and its user-stream events vs. those
the simulator delivered; the strategy's last fired clock and next timer deadline (the barrier
posts the strategy's wake semaphore when a timer is due). Each process writes its "done" marker
after what the work caused is published and the barrier reads upstream before downstream, so
under x86-64's store and load ordering one look that finds everything caught up is proof (see
procs/tools/replay/lockstep.py for the table). Frames that change nothing at the exchange and
have no subscriber (the best bid/offer stream) pass without an event. Cost: ~1-2k events/s here.

Determinism: the same recording, strategy, params, config and latency model give the same orders,
fills and P&L, and the same ``journal_sha256`` (summary.py says which fields it covers and why records are
grouped per order). ``tests/tools/replay`` checks it, with a golden summary per shipped strategy.
"""
