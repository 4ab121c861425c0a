"""Ended runs counted per hour and per day, kept in step with the runs table; the stats read them."""
