"""execution's counters and latency histograms (labels are the lower-case names)."""

from __future__ import annotations

from enum import IntEnum


class Counter(IntEnum):
    INTENTS = 0
    DUPLICATE_INTENTS = 1  # re-read after a restart and already journaled: skipped
    ORDERS_SENT = 2
    DENIED = 3
    ACCEPTED = 4
    REJECTED = 5
    FILLS = 6
    DUPLICATE_FILLS = 7
    CANCELS_SENT = 8
    CANCELED = 9
    EXPIRED = 10
    ILLEGAL_TRANSITIONS = 11
    STALE_REPORTS = 12
    UNKNOWN_OUTCOMES = 13
    QUERIES = 14
    RESENDS = 15
    RATE_LIMITED = 16  # 429/418 answers
    THROTTLED = 17  # requests that waited for the client-side limiter
    TIMEOUTS = 18
    FAILURES = 19
    BREAKER_STATE = 20  # 0 closed, 1 open, 2 half-open
    BREAKER_OPENS = 21
    EXEC_FULL_WAITS = 22  # the exec ring was full: events waited (never dropped)
    WS_RECONNECTS = 23
    STREAM_RECONNECTS = 24
    UNKNOWN_REPORTS = 25  # user-stream reports for orders b25 does not know
    ADOPTED = 26
    RECONCILE_CANCELED = 27
    REST_FALLBACK = 28  # order requests sent over REST because the WS API was down
    OPEN_ORDERS = 29
    JOURNAL_RECORDS = 30
    RECOVERED = 31  # 1 once reconciliation finished and intents are accepted
    BAD_CONTROL = 32
    # replay harness lockstep gauges (kept only with [execution] sim_clock)
    USER_EVENTS = 33  # user-data stream events handled (written after PENDING)
    PENDING = 34  # gauge: requests queued or unanswered + events waiting for the exec ring + catch-up tasks
    KEEP_WARM = 35  # keep-warm runs of the order path on scratch data (Engine.warm)
    VANISHED = 36  # acknowledged orders the exchange no longer knew (REJECT_UNKNOWN_ORDER): closed as EXPIRED
    RATE_LIMIT_USED_PERMILLE = 37  # gauge: the fullest rate-limit window's use, 0..1000 of the exchange's limit
    JOURNAL_ERRORS = 38  # journal appends that failed (the process then exits for supervisord to restart)
    MODIFIES_SENT = 39  # amend requests written
    MODIFIED = 40  # amends the venue applied
    MODIFY_REJECTED = 41  # amends denied by the pre-trade check or refused by the venue
    BATCH_CANCELS = 42  # batch cancel requests written (each for up to the venue's batch size)
    DEAD_MAN_ARMS = 43  # dead-man switch requests written (arm, refresh or disarm)
    DEAD_MAN_FAILURES = 44  # dead-man switch requests the venue did not take
    DEAD_MAN_SYMBOLS = 45  # gauge: symbols whose dead-man switch is armed
    TRIGGERED = 46  # conditional orders whose trigger was hit
    ORDER_REPORTS = 47  # reports of open orders published (a strategy's REPORT_ORDERS, or after a restart)
    JOURNAL_LOW = 48  # gauge: 1 while the journal's disk is full (new orders denied journal_full)
    EVENTS_REPUBLISHED = 49  # journaled events a kill kept off the exec ring, published at the next start


class Hist(IntEnum):
    INTENT_TO_WIRE = 0  # intent read from its ring -> request written to the socket
    WIRE_TO_ACK = 1  # request written -> the exchange's answer received
    TICK_TO_WIRE = 2  # market-data frame received (the intent's ts_md_recv) -> request written
