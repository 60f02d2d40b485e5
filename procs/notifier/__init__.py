"""notifier: every alert of the system delivered off the host (webhook, Slack, Telegram, e-mail
... through apprise URLs), by the routes of ``[alerts]`` in b25.toml."""
