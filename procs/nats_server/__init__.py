"""The embedded NATS server program (see __main__)."""
