"""Descriptive statistics, quantiles and a least-squares line, in plain Python."""

import math
from collections import Counter


class StatsError(ValueError):
    """Data that statistics cannot be computed on."""


def _check(data, name):
    if not isinstance(data, list) or not data:
        raise StatsError(f"`{name}` must be a non-empty list of numbers")
    for i, x in enumerate(data):
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
            raise StatsError(f"`{name}[{i}]` must be a finite number, got {x!r}")
    return [float(x) for x in data]


def quantile(sorted_data, q):
    """Linear interpolation between closest ranks (type 7, as in R and NumPy)."""
    if not 0.0 <= q <= 1.0:
        raise StatsError(f"quantile {q} is not between 0 and 1")
    n = len(sorted_data)
    pos = (n - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, n - 1)
    return sorted_data[lo] + (sorted_data[hi] - sorted_data[lo]) * (pos - lo)


def describe(data, quantiles=None):
    xs = _check(data, "data")
    n = len(xs)
    ordered = sorted(xs)
    total = math.fsum(xs)
    mean = total / n
    squares = math.fsum((x - mean) ** 2 for x in xs)
    counts = Counter(xs)
    top = max(counts.values())
    result = {
        "count": n,
        "sum": total,
        "mean": mean,
        "median": quantile(ordered, 0.5),
        "modes": sorted(x for x, c in counts.items() if c == top) if top > 1 else [],
        "min": ordered[0],
        "max": ordered[-1],
        "range": ordered[-1] - ordered[0],
        "variance_population": squares / n,
        "stdev_population": math.sqrt(squares / n),
        "variance_sample": squares / (n - 1) if n > 1 else None,
        "stdev_sample": math.sqrt(squares / (n - 1)) if n > 1 else None,
        "q1": quantile(ordered, 0.25),
        "q3": quantile(ordered, 0.75),
    }
    result["iqr"] = result["q3"] - result["q1"]
    if all(x > 0 for x in xs):
        result["geometric_mean"] = math.exp(math.fsum(math.log(x) for x in xs) / n)
    if quantiles:
        result["quantiles"] = {str(q): quantile(ordered, q) for q in quantiles}
    return result


def regression(x, y):
    xs = _check(x, "x")
    ys = _check(y, "y")
    if len(xs) != len(ys):
        raise StatsError(f"`x` has {len(xs)} values but `y` has {len(ys)}")
    if len(xs) < 2:
        raise StatsError("a line needs at least two points")
    n = len(xs)
    mx = math.fsum(xs) / n
    my = math.fsum(ys) / n
    sxx = math.fsum((a - mx) ** 2 for a in xs)
    syy = math.fsum((b - my) ** 2 for b in ys)
    sxy = math.fsum((a - mx) * (b - my) for a, b in zip(xs, ys))
    if sxx == 0:
        raise StatsError("all `x` values are equal; the slope is undefined")
    slope = sxy / sxx
    intercept = my - slope * mx
    r = sxy / math.sqrt(sxx * syy) if syy > 0 else None
    return {
        "slope": slope,
        "intercept": intercept,
        "r": r,
        "r_squared": r * r if r is not None else None,
        "n": n,
    }
