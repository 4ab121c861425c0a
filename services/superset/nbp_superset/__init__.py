"""Superset for the platform on this machine: ``nbp-superset serve`` (``make superset``, and ``make dev``'s
supervisor) installs it into its own environment, prepares its databases, migrates, initialises, imports
the dashboards and serves it. The configuration and the dashboards themselves live in ``superset-auth/``."""
