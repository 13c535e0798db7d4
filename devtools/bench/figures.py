"""Figures of ``./dev bench``: timing helpers, and ``record`` which prints
one line of figures and appends it to the JSON lines file named by
$FAYVAD_BENCH_FIGURES (``./dev bench`` turns that file into its table).

Standard library only: ``./dev`` itself formats the table with it."""

import json
import math
import os
import statistics
import time


def timed(func, repeat):
    """Call ``func`` ``repeat`` times: (seconds of each call, last result)."""
    samples, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = func()
        samples.append(time.perf_counter() - start)
    return samples, result


def latency(samples):
    """Median, 95th percentile (nearest rank) and minimum, in milliseconds."""
    ordered = sorted(samples)
    p95 = ordered[math.ceil(0.95 * len(ordered)) - 1]
    return {
        "n": len(samples),
        "median_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(p95 * 1000, 1),
        "min_ms": round(ordered[0] * 1000, 1),
    }


def describe(figures):
    return "  ".join(f"{key}={value}" for key, value in figures.items())


def record(benchmark, case, **figures):
    print(f"\n[bench] {benchmark} | {case} | {describe(figures)}", flush=True)
    path = os.environ.get("FAYVAD_BENCH_FIGURES")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps({"benchmark": benchmark, "case": case, "figures": figures}) + "\n")
