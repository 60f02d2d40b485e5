"""The venue seam: everything b25 needs from an exchange, behind a few Protocols.

``messages`` holds the normalised structs, ``protocols`` the Protocols the engines call,
``config`` the ``[venue]`` section's base, ``adapters`` the table from ``[venue] kind`` to an
adapter. Each adapter lives in its own package (``procs/venue/binance/``) and is the only place
its venue's wire words appear (with exchange_sim, which speaks Binance).
"""
