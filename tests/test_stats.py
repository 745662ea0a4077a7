"""recipe/stats.py against computations written here another way: Wilson's interval as the roots of its
defining quadratic, McNemar's p-value as the probability of every outcome at least as extreme, pass@k by
listing every subset of k samples."""

import itertools
import math
from fractions import Fraction

import pytest

from recipe.stats import Z_95, binomial_two_sided, mcnemar, mean_interval, pass_at_k, wilson_interval


def wilson_by_quadratic(k: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The p for which the observed share is exactly z standard errors (of p itself) away:
    (k/n - p)^2 = z^2 p (1 - p) / n, i.e. (1 + z^2/n) p^2 - (2 k/n + z^2/n) p + (k/n)^2 = 0."""
    share = k / n
    a, b, c = 1 + z * z / n, -(2 * share + z * z / n), share * share
    root = math.sqrt(b * b - 4 * a * c)
    return (-b - root) / (2 * a), (-b + root) / (2 * a)


def p_as_extreme(gained: int, lost: int) -> float:
    """Exact two-sided p: under no difference each discordant problem is a fair coin; add up the
    probability of every count at least as far from the middle as the one seen."""
    n = gained + lost
    seen = abs(Fraction(gained) - Fraction(n, 2))
    total = sum(Fraction(math.comb(n, i), 2**n) for i in range(n + 1) if abs(Fraction(i) - Fraction(n, 2)) >= seen)
    return float(total)


@pytest.mark.parametrize("n", [1, 2, 5, 10, 32, 64, 100])
def test_wilson_interval_holds_its_estimate_and_matches_the_quadratic(n):
    for k in range(n + 1):
        low, high = wilson_interval(k, n)
        assert 0 <= low <= k / n <= high <= 1, (k, n, low, high)
        expected = wilson_by_quadratic(k, n)
        assert low == pytest.approx(max(0.0, expected[0]), abs=1e-12) and high == pytest.approx(
            min(1.0, expected[1]), abs=1e-12
        )


def test_wilson_interval_published_values():
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", Statistics in Medicine
    # 17:857-872, Table I, the score method without continuity correction
    for (k, n), expected in {
        (81, 263): (0.2553, 0.3662),
        (15, 148): (0.0624, 0.1605),
        (0, 20): (0.0, 0.1611),
        (1, 29): (0.0061, 0.1718),
    }.items():
        assert wilson_interval(k, n) == pytest.approx(expected, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)  # nothing observed: nothing known


@pytest.mark.parametrize(
    "gained, lost",
    [(0, 0), (1, 0), (0, 10), (10, 0), (3, 3), (6, 3), (24, 0), (20, 8), (7, 12), (31, 33)],
)
def test_mcnemar_p_value_is_the_exact_binomial_tail(gained, lost):
    before = [False] * gained + [True] * lost + [True] * 5 + [False] * 4  # 5 both right, 4 both wrong
    after = [True] * gained + [False] * lost + [True] * 5 + [False] * 4
    result = mcnemar(before, after)
    assert (result["gained"], result["lost"], result["problems"]) == (gained, lost, gained + lost + 9)
    assert result["difference"] == pytest.approx((gained - lost) / (gained + lost + 9))
    assert result["p_value"] == pytest.approx(p_as_extreme(gained, lost), rel=1e-12)


def test_mcnemar_known_values():
    assert binomial_two_sided(0, 10) == pytest.approx(2 / 1024)  # ten discordant problems, all one way
    assert binomial_two_sided(0, 0) == 1.0 and binomial_two_sided(5, 10) == 1.0
    with pytest.raises(ValueError, match="same problems"):
        mcnemar([True], [True, False])


@pytest.mark.parametrize("n, c, k", [(4, 0, 1), (4, 1, 1), (4, 2, 4), (5, 2, 2), (8, 3, 4), (6, 6, 3), (7, 1, 7)])
def test_pass_at_k_is_the_share_of_k_subsets_with_a_right_sample(n, c, k):
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    expected = sum(any(samples[i] for i in subset) for subset in subsets) / len(subsets)
    assert pass_at_k(n, c, k) == pytest.approx(expected)


def test_pass_at_k_needs_k_samples():
    with pytest.raises(ValueError, match="at least 4 samples"):
        pass_at_k(3, 1, 4)


def test_mean_interval_is_the_normal_approximation():
    values = [0.0, 0.25, 0.5, 1.0, 1.0, 0.75]
    mean = sum(values) / 6
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / 5)
    half = Z_95 * sd / math.sqrt(6)
    assert mean_interval(values) == pytest.approx((mean - half, min(1.0, mean + half)))
    assert mean_interval([1.0]) == (0.0, 1.0)
