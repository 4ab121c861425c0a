"""Schedules: notebooks run on a calendar (five-field cron in an IANA timezone), fired exactly once per
fire time by whichever executor process claims it first in the database."""
