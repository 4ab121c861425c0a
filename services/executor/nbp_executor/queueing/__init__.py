"""The durable queue in PostgreSQL: transitions with their outbox rows, LISTEN/NOTIFY wake-ups, the relay
to the history, the workers that claim and watch runs, and the reaper."""
