"""The Binance USD-M futures adapter: every Binance wire detail b25 knows.

Wire structs, signing, the REST, WebSocket API and stream clients, exchangeInfo, the depth-sync
rules, order-status and error-code mapping and rate-limit headers live here and nowhere else
(exchange_sim speaks the same protocol and may import from here; nothing here imports it).
``Adapter`` (``adapter.py``) is what ``procs.venue.adapters`` hands the processes.
"""
