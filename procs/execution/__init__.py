"""The order path's client side, run by ``procs/execution/__main__.py``.

Modules: ``config`` (the ``[execution]`` section), ``pretrade`` (the pure pre-trade check),
``orders`` (Order, the order state machine, open counts), ``journal`` (append-only msgpack
frames), ``limiter`` (token buckets from the venue's request limits, usage corrections, 429
pause), ``breaker`` (circuit breaker), ``engine`` (intents -> requests, answers and reports ->
OrderEvents), ``recovery`` (journal rebuild/compaction, reconciliation), ``intake`` (reading the
intent rings from the asyncio loop), ``risksource``, ``counters``. The venue is an
``OrderGateway`` (``procs.venue``): nothing here speaks its wire protocol.

Decisions worth knowing:
  * Client order ids are ``b25-<epoch>-<n>``: the epoch is journaled and grows at every start,
    so an id is never reused; a retry of one order always reuses its id. After an unknown
    outcome (timeout, dropped connection, an ambiguous server error, REJECT_DUPLICATE_ID) the
    order is queried by its client order id and re-sent only on REJECT_UNKNOWN_ORDER (never
    arrived).
  * A venue unavailable (REPLY_FAILED: not acted on) rejects the order (ORDER_REJECTED,
    REJECT_UNAVAILABLE) and counts against the breaker; the strategy decides whether to try again.
  * Breaker open: new orders are denied (DENY_BREAKER_OPEN) except one half-open probe;
    cancels and status queries are always sent. Its state is the ``breaker_state`` counter
    (0 closed, 1 open, 2 half-open) and a ``breaker_changed`` log line per transition.
  * A 429/418 pauses every request (Retry-After when given, else 1 s doubling to 30 s); the
    request goes back to the head of the queue: intents wait, none is dropped.
  * Status reports older than what is known (the API's NEW ack after the stream's fill) are
    STALE and ignored; contradicting ones (FILLED -> CANCELED) are ILLEGAL: counted, logged,
    never applied. Fills are deduplicated by trade id; a fill on an order b25 had closed is
    still published (it happened) and counted as illegal.
  * CANCEL_ALL intents: from a strategy (source 1) cancel that strategy's orders, otherwise
    all; ``symbol_id`` < 0 means every symbol. The ``CancelAll`` control command cancels all.
  * Intents re-read after a crash are skipped by ring sequence (every SUBMIT journals its
    ring and sequence before anything is sent).
"""
