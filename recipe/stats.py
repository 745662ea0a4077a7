"""How far to trust the comparison: a 95 % interval for each share, a paired test for two models answering
the same problems, and pass@k from n samples per problem.

- Interval: Wilson's score interval. Unlike the textbook "p +- 1.96 sqrt(p(1-p)/n)", it stays inside
  [0, 1], is not zero-width at 0 % or 100 %, and keeps close to its nominal 95 % on the 32-100 problems
  a held-out set here has.
- Paired test: the exact McNemar test. Two models on the same problems differ only where one is right
  and the other wrong; under "no difference" each such problem is a fair coin, so the two-sided p-value
  is a binomial tail on those discordant problems. Problems both get right (or wrong) say nothing
  about the difference, which is why a paired test is sharper than comparing two intervals.
- pass@k: the unbiased estimator of Chen et al. 2021 ("Evaluating Large Language Models Trained on
  Code"): from n samples of which c are right, 1 - C(n-c, k) / C(n, k), averaged over problems.

Exact arithmetic with math.comb: no scipy needed, and the numbers do not depend on a library's version.
"""

from __future__ import annotations

import math

Z_95 = 1.959963984540054  # the standard normal's 97.5 % quantile
ALPHA = 0.05  # a difference with p below this is called distinguishable from noise
INTERVAL_KIND = "Wilson score interval, 95 %"
PAIRED_TEST = "exact McNemar test (two-sided binomial test on the problems where the two models disagree)"
PASS_AT_K = "unbiased estimator of Chen et al. 2021: mean over problems of 1 - C(n-c, k) / C(n, k)"


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """(low, high) for a share of `successes` out of `n`; (0, 1) when there is nothing to go on."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    spread = z * z / n
    centre = (p + spread / 2) / (1 + spread)
    half = z * math.sqrt(p * (1 - p) / n + spread / (4 * n)) / (1 + spread)
    low, high = max(0.0, centre - half), min(1.0, centre + half)
    # The interval always holds p; only rounding at p = 0 or 1 could push a bound past it.
    return min(low, p), max(high, p)


def mean_interval(values: list[float], z: float = Z_95) -> tuple[float, float]:
    """Normal-approximation interval for a mean of per-problem values in [0, 1] (pass@1 from samples)."""
    if not values:
        return 0.0, 1.0
    mean = sum(values) / len(values)
    if len(values) < 2:
        return 0.0, 1.0
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    half = z * sd / math.sqrt(len(values))
    return max(0.0, mean - half), min(1.0, mean + half)


def binomial_two_sided(smaller: int, n: int) -> float:
    """P(a fair coin gives a count at least as far from n/2 as `smaller` heads), both tails."""
    if n == 0:
        return 1.0
    smaller = min(smaller, n - smaller)
    tail = sum(math.comb(n, i) for i in range(smaller + 1)) / 2**n
    return min(1.0, 2 * tail)


def mcnemar(before: list[bool], after: list[bool]) -> dict:
    """The exact McNemar test for two models' right/wrong on the same problems, in the same order."""
    if len(before) != len(after):
        raise ValueError(f"paired test needs the same problems: {len(before)} vs {len(after)}")
    gained = sum(1 for a, b in zip(before, after, strict=True) if b and not a)
    lost = sum(1 for a, b in zip(before, after, strict=True) if a and not b)
    n = max(len(before), 1)
    return {
        "problems": len(before),
        "gained": gained,  # wrong before, right after
        "lost": lost,  # right before, wrong after
        "difference": (gained - lost) / n,
        "p_value": binomial_two_sided(min(gained, lost), gained + lost),
    }


def pass_at_k(n: int, c: int, k: int) -> float:
    """Chance that at least one of k samples, drawn without replacement from n of which c are right, is right."""
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples per problem, not {n}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def distinguishable(p_value: float) -> bool:
    return p_value < ALPHA
