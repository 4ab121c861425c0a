"""The execution history: the record of every run."""
