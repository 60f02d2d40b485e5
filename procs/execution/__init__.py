"""The order path's client side, run by ``procs/execution/__main__.py``.

Modules: ``config`` (the ``[execution]`` section), ``pretrade`` (the pure pre-trade check),
``orders`` (Order, the exchange-status state machine, open counts), ``journal`` (append-only
msgpack frames), ``limiter`` (token buckets from exchangeInfo, usage corrections, 429 pause),
``breaker`` (circuit breaker), ``transport`` (WS API over picows, REST over aiohttp, signing),
``userstream`` (listen key, keepalive, ORDER_TRADE_UPDATE), ``engine`` (intents -> requests,
answers and reports -> OrderEvents), ``recovery`` (journal rebuild/compaction, reconciliation),
``intake`` (reading the intent rings from the asyncio loop), ``credentials``, ``counters``.

Decisions worth knowing:
  * Client order ids are ``b25-<epoch>-<n>``: the epoch is journaled and grows at every start,
    so an id is never reused; a retry of one order always reuses its id. After an unknown
    outcome (timeout, dropped connection, 503 "Unknown error", 408, -4116 duplicate id) the
    order is queried by ``origClientOrderId`` and re-sent only on -2013 (never arrived).
  * 503 "Service Unavailable." (not acted on) rejects the order (ORDER_REJECTED, -1001) and
    counts against the breaker; the strategy decides whether to try again.
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
