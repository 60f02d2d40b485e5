"""The bridge's counters and latency histograms (labels are the lower-case names; the monitor's
/metrics shows them as ``b25_<label>_total{proc="bridge"}``, the TUI's system tab reads them)."""

from __future__ import annotations

from enum import IntEnum


class Counter(IntEnum):
    CONNECTED = 0  # gauge: 1 while connected to NATS
    CONNECTS = 1  # successful connections (the first and every reconnect)
    DISCONNECTS = 2
    PUBLISHED = 3  # messages handed to the NATS client
    PUBLISHED_BYTES = 4
    DROPPED_OUTAGE = 5  # md / signals / risk messages not sent because NATS was down
    DROPPED_DURABLE = 6  # exec / alerts messages refused because the buffer was full
    LAPPED = 7  # ring records overwritten before the bridge read them
    CONFLATED = 8  # book updates merged into a later Book ([bridge] book_max_hz)
    BUFFERED = 9  # gauge: durable messages waiting for a JetStream acknowledgement
    ACKED = 10  # durable messages JetStream acknowledged
    RESENT = 11  # durable messages sent again (no ack in time, or after a reconnect)
    ACK_ERRORS = 12  # JetStream refused a message (no stream, limits)
    LAG_US = 13  # gauge: age of the oldest unacknowledged durable message, us
    INTENTS = 14  # remote intents written to orders.remote
    INTENTS_REFUSED = 15  # remote intents refused (bad, unknown strategy, scales, ring full)
    INTENTS_DUPLICATE = 16
    REMOTE_DEAD = 17  # remote strategies declared dead: their orders cancelled
    COMMANDS = 18  # control commands sent on behalf of a NATS operator
    COMMANDS_REFUSED = 19
    STREAMS_READY = 20  # gauge: 1 once the JetStream streams exist
    REMOTE_ALIVE = 21  # gauge: remote strategies heard within remote_dead_s
    DROPPED_SLOW = 22  # md / signals / risk messages dropped: NATS's outbound buffer was full (a slow network)


class Hist(IntEnum):
    RING_TO_NATS = 0  # record published to its ring (ts_pub) -> handed to the NATS client
    ACK = 1  # durable message sent -> JetStream's acknowledgement received
