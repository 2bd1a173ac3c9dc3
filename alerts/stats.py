"""The statistics behind anomaly and release rules, pure functions over numbers."""

import math
from dataclasses import dataclass
from statistics import median

from scipy import stats

MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution times this is its sigma


def robust_z(value: float, history: list[float], *, floor: float) -> tuple[float, float, float]:
    """(z, median, scale): how many robust standard deviations `value` lies from the
    median of `history` (scale = 1.4826 * MAD, never below `floor` nor 10% of the median,
    so a perfectly flat history does not make every wobble infinite)."""
    centre = median(history)
    mad = median(abs(x - centre) for x in history)
    scale = max(MAD_TO_SIGMA * mad, 0.1 * abs(centre), floor)
    return (value - centre) / scale, centre, scale


@dataclass(frozen=True)
class Comparison:
    test: str  # "two-proportion z-test" | "Mann-Whitney U"
    p_value: float
    before: float  # the previous release's rate (%) or median
    after: float
    effect: float  # Cohen's h, or the rank-biserial correlation
    effect_name: str


def two_proportions(hits_a: int, n_a: int, hits_b: int, n_b: int) -> Comparison:
    """Two-sided two-proportion z-test of b against a (pooled standard error); effect size
    Cohen's h."""
    p_a, p_b = hits_a / n_a, hits_b / n_b
    pooled = (hits_a + hits_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    z = 0.0 if se == 0 else (p_b - p_a) / se
    p = float(2 * stats.norm.sf(abs(z)))
    h = 2 * math.asin(math.sqrt(p_b)) - 2 * math.asin(math.sqrt(p_a))
    return Comparison("two-proportion z-test", p, 100 * p_a, 100 * p_b, h, "Cohen's h")


def mann_whitney(a: list[float], b: list[float]) -> Comparison:
    """Two-sided Mann-Whitney U of b against a; effect size the rank-biserial correlation
    (positive: b tends to be larger)."""
    result = stats.mannwhitneyu(b, a, alternative="two-sided")
    r = 2 * float(result.statistic) / (len(a) * len(b)) - 1
    return Comparison("Mann-Whitney U", float(result.pvalue), median(a), median(b), r,
                      "rank-biserial r")
