"""The duration histogram of the rollups: log-spaced buckets, 8 per doubling, from 1 ms to 12 days.

A percentile read from it is the representative value of the bucket that holds the run of that rank
(nearest rank), the bucket's geometric middle: within 2^(1/16) - 1 = 4.4% of the true duration, or
1.1 ms absolute below 1 ms. The bucket of a duration is computed by PostgreSQL, at intake and on a
rebuild alike, so both put a value on a bucket boundary in the same bucket.
"""

from __future__ import annotations

import math

SMALLEST_SECONDS = 0.001
PER_DOUBLING = 8
BUCKETS = 240  # 0.001 s * 2 ** (240 / 8) = 12.4 days, beyond the longest timeout a run may have
RELATIVE_ERROR = 2 ** (1 / (2 * PER_DOUBLING)) - 1


def bucket_sql(seconds: str) -> str:
    """The bucket of a duration (an SQL expression), as SQL: NULL for none, else 1..BUCKETS."""
    doublings = f"ln(greatest({seconds}, {SMALLEST_SECONDS}) / {SMALLEST_SECONDS}) / ln(2)"
    index = f"floor({doublings} * {PER_DOUBLING})::int + 1"
    return f"CASE WHEN {seconds} IS NOT NULL THEN least(greatest({index}, 1), {BUCKETS}) END"


def representative(bucket: int) -> float:
    """The value a percentile falling in ``bucket`` is answered with."""
    return SMALLEST_SECONDS * 2 ** ((bucket - 0.5) / PER_DOUBLING)


def percentile(counts: dict[int, int], fraction: float) -> float | None:
    """The nearest-rank percentile of the durations counted per bucket."""
    return percentiles(counts, (fraction,))[0]


def percentiles(counts: dict[int, int], fractions: tuple[float, ...]) -> list[float | None]:
    """The nearest-rank percentiles (``fractions`` ascending) of the durations counted per bucket, in
    one pass over the buckets."""
    total = sum(counts.values())
    if total <= 0:  # below 0 only from rollups out of step with each other (see rebuild-rollups)
        return [None] * len(fractions)
    ranks = [max(1, math.ceil(fraction * total)) for fraction in fractions]
    found: list[float | None] = []
    seen = 0
    for bucket in sorted(counts):
        seen += counts[bucket]
        while len(found) < len(ranks) and seen >= ranks[len(found)]:
            found.append(representative(bucket))
    return found
