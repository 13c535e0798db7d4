"""Retrying later (pure Python): how long to wait after a failed attempt."""

import random

BACKOFF_BASE = 30  # seconds before the first retry
BACKOFF_MAX = 3600  # never wait more than an hour between attempts


def backoff_delay(attempts, rng=random):
    """Seconds to wait after ``attempts`` failed tries: exponential
    (30 s, 60 s, 2 min, ... capped at an hour) with jitter between half and
    all of it, so that workers retrying the same outage spread out."""
    delay = min(BACKOFF_MAX, BACKOFF_BASE * 2 ** max(attempts - 1, 0))
    return delay * (0.5 + rng.random() / 2)
