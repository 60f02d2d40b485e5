"""web: the TUI in a browser (``b25 web``), one TUI process per browser session via textual-serve."""
