"""Retention: ended runs removed after N days (platform-wide, or per notebook), their totals kept."""
