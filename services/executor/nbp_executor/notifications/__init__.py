"""Notifications: when a run of a schedule or of a notebook fails, succeeds or recovers, a webhook (JSON,
HMAC-signed, Slack-compatible ``text``) or an e-mail (SMTP), through an outbox so that none is lost and
none blocks a run."""
