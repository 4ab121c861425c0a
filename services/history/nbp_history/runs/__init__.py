"""The record of every run: the executor's events in, the lists and the record by id out."""
