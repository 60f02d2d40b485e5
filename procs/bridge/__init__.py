"""The NATS bridge: the rings out to NATS subjects and JetStream, remote intents and commands in."""
