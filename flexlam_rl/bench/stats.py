"""How a benchmark cell is decided: an exact sign-flip test on seed-paired differences, its inverted interval,
and a Benjamini-Hochberg adjustment across the cells read together.

Per cell (suite, metric, protocol, budget, view) the data are paired differences ``d[seed, task]`` (FlexLAM
minus fixed; one column per task where a metric is scored per task). One seed's LAMs serve every task of a
suite, so a seed is the unit: the tasks are averaged within each seed first and the test flips the sign of a
seed's whole row (seeds are permuted jointly across tasks, never resampled per task).

Why an exact sign-flip (randomization) test and not a bootstrap or a t interval:

- under "FlexLAM and fixed do not differ", a seed's two models are exchangeable, so its difference is as likely
  to be d as -d; enumerating all 2^n sign patterns gives the test's exact null distribution. The false-verdict
  rate is then at most the nominal level for *any* symmetric noise (heavy tails, outlier seeds, tasks correlated
  through the seed), with no normal approximation. The percentile bootstrap it replaces gave ~13% false
  verdicts at 5 seeds; a t interval is exact only for normal noise.
- the price: with n seeds the smallest two-sided p-value is 2 / 2^n, so below 6 seeds no cell can reach 5% at
  all (every cell is a ``tie`` with an unbounded interval). 10 seeds give p >= 1/512.

The 95% interval is the set of shifts mu the test does not reject (``d - mu`` sign-symmetric), found by
bisection; ``half_width`` is half its length: a ``tie`` rules out differences larger than about that.
Across the headline cells of a view, verdicts are adjusted with Benjamini-Hochberg at q = 0.05 (false
discovery rate): Holm's family-wise control cannot reject anything here, since 40 cells need p <= 0.05 / 40
and an exact test at 10 seeds stops at 1/512.

The primary-endpoint protocol (a scale with ``margins``; :mod:`flexlam_rl.bench.report`) asks other questions of
the same test: a few primary endpoints adjusted among themselves with :func:`holm`, and per budget whether FlexLAM
is *non-inferior* to the fixed LAM, i.e. worse by less than a margin fixed in advance (:func:`noninferiority`: a
one-sided test at 2.5% of "FlexLAM is worse by the margin or more"; "at every budget" is an intersection-union
test, so it needs no adjustment). The test's exactness rests on symmetric differences; :func:`shape_size` checks
that on each cell's own data, and a cell whose shape would inflate the test's false-verdict rate past
``SHAPE_SIZE_LIMIT`` is decided at a level calibrated to that shape (:func:`calibrated_alpha`: a bootstrap of its
centered differences), which keeps a skewed cell's false-verdict rate near the nominal one (simulated, tests). A cell whose seeds all
differ by exactly zero carries no information (both models scored alike on every seed, e.g. neither ever plays)
and is never called non-inferior. :func:`power` simulates all of this at a given seed SD.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

LEVEL = 0.95
INTERVAL = "exact sign-flip test on seed means (tasks flipped jointly per seed), inverted for the interval"
MULTIPLICITY = "benjamini-hochberg"
ENUMERATE_UP_TO = 16  # seeds: every sign pattern (65,536); above, this many random patterns (seeded)
RANDOM_FLIPS_SEED = 0
VERDICTS = ("better", "tie", "worse")
NO_INFORMATION = "no information"  # every seed's difference is exactly zero
NI_ALPHA = 0.025  # one-sided level of a non-inferiority test: a two-sided 95% interval's end beyond -margin
SHAPE_SIZE_LIMIT = 0.075  # 1.5x the nominal 5%: above it, a cell is decided at a level calibrated to its shape
SHAPE_RESAMPLES = 1000
PENDING = "pending"  # a cell with a single seed: no test, no verdict, not counted


@dataclass(frozen=True)
class PairedTest:
    """One cell's paired comparison: mean difference, two-sided p-value, interval (None where unbounded)."""

    mean: float
    p_value: float
    ci: tuple[float, float] | None
    n_seeds: int

    @property
    def half_width(self) -> float | None:
        return None if self.ci is None else (self.ci[1] - self.ci[0]) / 2


def sign_patterns(n: int) -> np.ndarray:
    """``[F, n]`` of +-1: all 2^n patterns (n <= ENUMERATE_UP_TO), else 2^16 seeded ones plus the identity."""
    if n <= ENUMERATE_UP_TO:
        return np.array(list(itertools.product((1.0, -1.0), repeat=n)))
    rng = np.random.default_rng(RANDOM_FLIPS_SEED)
    return np.vstack([np.ones((1, n)), rng.choice((1.0, -1.0), size=(2**ENUMERATE_UP_TO - 1, n))])


def seed_means(diffs: np.ndarray) -> np.ndarray:
    """``[n_seeds]`` (or ``[n_seeds, n_tasks]``) -> each seed's mean over tasks: the unit the test flips."""
    diffs = np.asarray(diffs, dtype=np.float64)
    return diffs.mean(axis=1) if diffs.ndim == 2 else diffs


def _p_values(means: np.ndarray, flips: np.ndarray) -> np.ndarray:
    """Two-sided sign-flip p-values of ``means [n, cells]`` against zero: the share of patterns whose |mean|
    is at least the observed one (a relative tolerance keeps exact ties, e.g. all-equal seeds, as ties)."""
    observed = np.abs(means.mean(axis=0))
    flipped = np.abs(flips @ means) / means.shape[0]
    scale = np.abs(means).max(axis=0) + 1e-300
    return (flipped >= observed - 1e-9 * scale).mean(axis=0)


def paired_test(diffs: np.ndarray, level: float = LEVEL) -> PairedTest:
    """Sign-flip test and inverted interval for ``diffs [n_seeds]`` or ``[n_seeds, n_tasks]`` paired by seed."""
    means = seed_means(diffs)
    n = len(means)
    mean = float(means.mean())
    if n < 2:
        return PairedTest(mean, float("nan"), None, n)
    flips = sign_patterns(n)
    alpha = 1 - level
    p = float(_p_values(means[:, None], flips)[0])
    rejects = lambda mu: _p_values((means - mu)[:, None], flips)[0] <= alpha  # noqa: E731
    spread = float(np.abs(means - mean).max()) + abs(mean) + 1e-12
    far_low, far_high = mean - 1e3 * spread, mean + 1e3 * spread
    if not (rejects(far_low) and rejects(far_high)):  # too few seeds: no shift is ever rejected
        return PairedTest(mean, p, None, n)
    low = _boundary(rejects, far_low, mean)
    high = _boundary(rejects, far_high, mean)
    return PairedTest(mean, p, (low, high), n)


def _boundary(rejects, outside: float, inside: float, iterations: int = 60) -> float:
    """Bisection for the edge of the non-rejected set between a rejected ``outside`` and the mean."""
    for _ in range(iterations):
        mid = (outside + inside) / 2
        if rejects(mid):
            outside = mid
        else:
            inside = mid
    return float(inside)


def verdict(test: PairedTest, higher_is_better: bool, level: float = LEVEL) -> str:
    """The cell's own (unadjusted) ``better`` / ``tie`` / ``worse`` for FlexLAM; ``pending`` with one seed."""
    if test.n_seeds < 2:
        return PENDING
    return decide(test.mean, higher_is_better, test.p_value <= 1 - level)


def decide(mean: float, higher_is_better: bool, reject: bool) -> str:
    """A rejected cell goes to the side its mean difference is on (FlexLAM minus fixed); otherwise ``tie``."""
    if not reject or mean == 0:
        return "tie"
    return "better" if (mean > 0) == higher_is_better else "worse"


def benjamini_hochberg(p_values: Sequence[float], q: float = 1 - LEVEL) -> np.ndarray:
    """Which hypotheses BH rejects at false discovery rate ``q`` (NaN p-values are never rejected)."""
    p = np.asarray(p_values, dtype=np.float64)
    valid = np.flatnonzero(np.isfinite(p))
    out = np.zeros(len(p), dtype=bool)
    if len(valid) == 0:
        return out
    order = valid[np.argsort(p[valid], kind="stable")]
    passing = np.flatnonzero(p[order] <= q * np.arange(1, len(order) + 1) / len(order))
    if len(passing):
        out[order[: passing.max() + 1]] = True
    return out


def simulate_null_cells(n_seeds: int, n_tasks: int = 3, cells: int = 20_000, task_correlation: float = 0.5,
                        noise: str = "normal", seed: int = 0) -> np.ndarray:
    """``[cells, n_seeds, n_tasks]`` paired differences with no true difference: tasks correlated through
    the shared seed (``task_correlation``), ``normal`` or heavy-tailed (``t3``: Student t, 3 dof) noise."""
    rng = np.random.default_rng(seed)
    draw = (lambda size: rng.standard_normal(size)) if noise == "normal" else (lambda size: rng.standard_t(3, size))
    shared = draw((cells, n_seeds, 1))
    own = draw((cells, n_seeds, n_tasks))
    return np.sqrt(task_correlation) * shared + np.sqrt(1 - task_correlation) * own


def null_verdict_rate(n_seeds: int, n_tasks: int = 3, cells: int = 100_000, level: float = LEVEL, seed: int = 0) -> float:
    """The share of no-difference cells that get ``better`` or ``worse``, simulated through the test itself:
    half with normal and half with heavy-tailed noise, tasks correlated through the seed (rho = 0.5)."""
    if n_seeds < 2:
        return 0.0
    flips = sign_patterns(n_seeds)
    hits = 0
    for i, noise in enumerate(("normal", "t3")):
        diffs = simulate_null_cells(n_seeds, n_tasks, cells // 2, noise=noise, seed=seed + i)
        means = diffs.mean(axis=2).T  # [n_seeds, cells]
        for chunk in range(0, means.shape[1], 2048):
            hits += int((_p_values(means[:, chunk : chunk + 2048], flips) <= 1 - level).sum())
    return hits / (2 * (cells // 2))


def exact_null_rate(n_seeds: int, level: float = LEVEL) -> float:
    """The test's false-verdict rate under any continuous symmetric noise, from its exact null distribution:
    p-values are multiples of 2 / 2^n, so the rate is the largest such multiple <= 1 - level (all patterns
    enumerated, i.e. n <= ENUMERATE_UP_TO)."""
    step = 2.0 / 2**n_seeds
    return float(np.floor((1 - level) / step + 1e-9) * step)


def median_interval(values: Sequence[float], level: float = LEVEL) -> tuple[float, tuple[float, float] | None]:
    """The median of ``values`` and its distribution-free interval from order statistics (None below 6 values).

    For quantities that can be censored, such as "the label count at which a strategy catches up", where a seed
    that never does is +inf: ranks still order it, where a mean or a sign-flip interval would be undefined.
    The interval [x_(j), x_(n+1-j)] covers the median with probability 1 - 2 P(Binomial(n, 1/2) < j); j is the
    largest with coverage >= ``level`` (10 values: j = 2, coverage 0.979).
    """
    x = np.sort(np.asarray(values, dtype=np.float64))
    n = len(x)
    median = float(np.median(x)) if n else float("nan")
    below = 0.0  # P(Binomial(n, 1/2) < j)
    best = None
    for j in range(1, n // 2 + 1):
        below += math.comb(n, j - 1) / 2**n
        if 1 - 2 * below < level:
            break
        best = j
    if best is None:
        return median, None
    return median, (float(x[best - 1]), float(x[n - best]))


def min_p_value(n_seeds: int) -> float:
    """The smallest two-sided p-value the exact test can give with ``n_seeds`` (2 / 2^n)."""
    return 2.0 / 2**n_seeds if n_seeds <= ENUMERATE_UP_TO else 1.0 / 2**ENUMERATE_UP_TO


# ------------------------------------------------------------------ the primary-endpoint protocol
def holm_adjusted(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN stays NaN): reject where the adjusted value is at most the level."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(len(p), np.nan)
    valid = np.flatnonzero(np.isfinite(p))
    running = 0.0
    for i, index in enumerate(valid[np.argsort(p[valid], kind="stable")]):
        running = max(running, min(1.0, (len(valid) - i) * p[index]))
        out[index] = running
    return out


def holm(p_values: Sequence[float], level: float = 1 - LEVEL) -> np.ndarray:
    """Which hypotheses Holm's step-down rejects at family-wise level ``level`` (NaN p-values are never rejected)."""
    adjusted = holm_adjusted(p_values)
    return np.isfinite(adjusted) & (adjusted <= level + 1e-12)


def one_sided_p(means: np.ndarray, flips: np.ndarray) -> np.ndarray:
    """Sign-flip p-values of ``means [n, cells]`` for "the mean is above zero": the share of patterns whose mean is
    at least the observed one."""
    observed = means.mean(axis=0)
    flipped = flips @ means / means.shape[0]
    scale = np.abs(means).max(axis=0) + 1e-300
    return (flipped >= observed - 1e-9 * scale).mean(axis=0)


def centered_resamples(means: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """``[n, resamples]``: seed means drawn with replacement from ``means`` minus their mean (a true mean of zero,
    the data's own shape), what :func:`shape_size` and :func:`calibrated_alpha` test on."""
    means = np.asarray(means, dtype=np.float64)
    rng = np.random.default_rng(seed)
    return (means - means.mean())[rng.integers(0, len(means), size=(resamples, len(means)))].T


def calibrated_alpha(means: np.ndarray, alpha: float = NI_ALPHA, resamples: int = SHAPE_RESAMPLES, seed: int = 0) -> float:
    """The one-sided level at which :func:`one_sided_p` keeps ``alpha`` at the data's own shape: the largest
    threshold that at most ``alpha`` of the centered resamples (true mean zero, the data's skew) fall below."""
    draws = centered_resamples(means, resamples, seed)
    flips = sign_patterns(draws.shape[0])
    p = np.sort(np.concatenate([one_sided_p(draws[:, i : i + 256], flips) for i in range(0, resamples, 256)]))
    allowed = p[np.arange(1, resamples + 1) / resamples <= alpha]  # p[i] is the (i+1)-th smallest
    below = [v for v in allowed if np.mean(p <= v + 1e-12) <= alpha]
    return float(min(alpha, max(below))) if below else 0.0


def shape_size(means: np.ndarray, level: float = LEVEL, resamples: int = SHAPE_RESAMPLES, seed: int = 0) -> float:
    """The two-sided test's false-verdict rate at the data's own shape: the rejection rate over resamples (with
    replacement) of the centered seed means, whose true mean is zero but whose skew is the data's."""
    means = np.asarray(means, dtype=np.float64)
    if len(means) < 2 or not np.any(means - means.mean()):
        return 0.0
    draws = centered_resamples(means, resamples, seed)
    flips = sign_patterns(len(means))
    rejected = 0
    for chunk in range(0, resamples, 256):
        part = draws[:, chunk : chunk + 256]
        moving = np.abs(part).max(axis=0) > 0  # an all-zero resample is no test
        rejected += int((_p_values(part[:, moving], flips) <= 1 - level).sum())
    return rejected / resamples


@dataclass(frozen=True)
class NonInferiority:
    """One cell's non-inferiority reading: is FlexLAM worse than the fixed LAM by less than ``margin``?

    ``diff``: FlexLAM minus fixed (raw sign); ``p_value``: one-sided, of "worse by the margin or more";
    ``noninferior``: None where untested (one seed, or no information); ``test``: which test decided it."""

    diff: float
    margin: float
    p_value: float | None
    noninferior: bool | None
    test: str | None
    shape_size: float
    no_information: bool


def noninferiority(diffs: np.ndarray, margin: float, higher_is_better: bool, alpha: float = NI_ALPHA,
                   check_shape: bool = True) -> NonInferiority:
    """Non-inferiority of FlexLAM for ``diffs [n_seeds]`` (or ``[n_seeds, n_tasks]``, averaged per seed), FlexLAM
    minus fixed, against ``margin`` (> 0, in the metric's units): the exact sign-flip test of the oriented
    differences shifted by the margin, at a level calibrated to their shape where :func:`shape_size` exceeds
    ``SHAPE_SIZE_LIMIT``."""
    if not margin > 0:
        raise ValueError(f"a non-inferiority margin must be > 0, got {margin}")
    means = seed_means(diffs)
    mean = float(means.mean()) if len(means) else float("nan")
    if len(means) and not np.any(means):
        return NonInferiority(mean, margin, None, None, None, 0.0, True)
    if len(means) < 2:
        return NonInferiority(mean, margin, None, None, None, 0.0, False)
    size = shape_size(means) if check_shape else 0.0
    shifted = (means if higher_is_better else -means) + margin
    p = float(one_sided_p(shifted[:, None], sign_patterns(len(means)))[0])
    level, test = alpha, "sign-flip"
    if size > SHAPE_SIZE_LIMIT:
        level = calibrated_alpha(shifted, alpha)
        test = f"sign-flip at a level calibrated to the cell's shape ({level:.4f})"
    return NonInferiority(mean, margin, p, p <= level, test, size, False)


def power(sd: float, n_seeds: int, *, margin: float | None = None, effect: float = 0.0, sims: int = 2000,
          level: float = LEVEL, alpha: float = NI_ALPHA, seed: int = 0) -> float:
    """Simulated power at normal seed differences with SD ``sd`` and true mean ``effect`` (oriented: positive favours
    FlexLAM): of the non-inferiority test against ``margin`` when given, else of the two-sided difference test."""
    rng = np.random.default_rng(seed)
    means = effect + sd * rng.standard_normal((n_seeds, sims))
    flips = sign_patterns(n_seeds)
    hits = 0
    for chunk in range(0, sims, 256):
        part = means[:, chunk : chunk + 256]
        if margin is None:
            hits += int((_p_values(part, flips) <= 1 - level).sum())
        else:
            hits += int((one_sided_p(part + margin, flips) <= alpha).sum())
    return hits / sims


def seeds_for_power(sd: float, *, margin: float | None = None, effect: float = 0.0, target: float = 0.8,
                    candidates: Sequence[int] = tuple(range(6, 41, 2))) -> int | None:
    """The fewest seeds among ``candidates`` whose simulated :func:`power` reaches ``target`` (None: none does)."""
    for n in candidates:
        if power(sd, n, margin=margin, effect=effect) >= target:
            return int(n)
    return None
