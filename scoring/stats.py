"""The arithmetic behind consistency and drift, kept free of Django so it is easy to check."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population standard deviation."""
    n = len(values)
    mean = sum(values) / n
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / n)


def consistency_index(channel_means: Sequence[float]) -> float | None:
    """1 - (population SD of the per-channel means) / 0.5, clamped to 0-1.

    Scores live in [0, 1], where the largest possible SD is 0.5 (half the channels at 0,
    half at 1); so 1 means every channel sounds the same on average, 0 the most apart they
    can be. None with fewer than two channels."""
    if len(channel_means) < 2:
        return None
    _, sd = mean_sd(channel_means)
    return max(0.0, min(1.0, 1.0 - sd / 0.5))


def ewma_drift(*, baseline: Sequence[float], recent: Sequence[float], lam: float,
               limit: float, min_sigma: float, min_baseline: int = 5) -> dict[str, Any] | None:
    """EWMA control chart on daily means.

    The baseline days give the target mean mu and the day-to-day SD sigma (at least
    min_sigma, so a perfectly flat baseline does not flag noise). The EWMA z_t = lam x_t +
    (1 - lam) z_{t-1}, started at mu, runs over the recent days; its steady-state SD is
    sigma * sqrt(lam / (2 - lam)), and drift is |z - mu| > limit * that, on the last day.
    None when there is too little data to judge."""
    if len(baseline) < min_baseline or not recent:
        return None
    mu, sigma = mean_sd(baseline)
    sigma = max(sigma, min_sigma)
    z = mu
    for x in recent:
        z = lam * x + (1 - lam) * z
    sigma_z = sigma * math.sqrt(lam / (2 - lam))
    return {
        "method": "ewma",
        "baseline_mean": round(mu, 4),
        "baseline_sd": round(sigma, 4),
        "lambda": lam,
        "ewma": round(z, 4),
        "control_limit": round(limit * sigma_z, 4),
        "deviation": round(z - mu, 4),
        "direction": "down" if z < mu else "up",
        "drift": abs(z - mu) > limit * sigma_z,
    }


# Fewest scores a channel needs before its distribution is compared (KS p-values and
# Wasserstein distances on a handful of messages say little).
MIN_DISTRIBUTION_N = 20


def distribution_compare(values: dict[str, Sequence[float]],
                         min_n: int = MIN_DISTRIBUTION_N) -> dict[str, Any]:
    """Channels' score distributions compared pairwise: Wasserstein-1 distance (0-1 on
    0-1 scores) and the two-sample Kolmogorov-Smirnov statistic and p-value, with each
    side's n. Channels under min_n scores are listed as too small and left out; the
    largest distance is the headline (None with fewer than two channels to compare)."""
    from scipy.stats import ks_2samp, wasserstein_distance

    sizes = {c: len(v) for c, v in sorted(values.items())}
    usable = sorted(c for c, n in sizes.items() if n >= min_n)
    pairs = []
    for i, a in enumerate(usable):
        for b in usable[i + 1:]:
            ks = ks_2samp(values[a], values[b])
            pairs.append({
                "a": a, "b": b, "n_a": sizes[a], "n_b": sizes[b],
                "wasserstein": round(float(wasserstein_distance(values[a], values[b])), 4),
                "ks": round(float(ks.statistic), 4), "ks_p": float(ks.pvalue),
            })
    worst = max(pairs, key=lambda p: p["wasserstein"]) if pairs else None
    return {
        "sizes": sizes,
        "too_small": sorted(c for c, n in sizes.items() if n < min_n),
        "min_n": min_n,
        "pairs": pairs,
        "max_wasserstein": worst["wasserstein"] if worst else None,
        "most_apart": [worst["a"], worst["b"]] if worst else None,
    }
