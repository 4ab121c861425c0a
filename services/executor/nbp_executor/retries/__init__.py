"""Retries: a run (or every run of a schedule) may be tried again after it failed, timed out or lost its
executor; each attempt is a run of its own, linked to the first by ``retry_of``."""
