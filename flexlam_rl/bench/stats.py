"""How a benchmark cell is decided: the FlexLAM minus fixed difference, paired by seed, with a bootstrap CI.

Per cell (suite, metric, protocol, budget, view) the data are paired differences ``d[seed, task]``
(one task for suite-level metrics, one column per task where a metric is scored per task). The 95%
interval is the percentile interval of the mean difference under a stratified bootstrap: within
each task, seeds are resampled with replacement (rliable's ``StratifiedBootstrap``, written out here
so the benchmark needs no extra dependency). The verdict is ``better`` when the interval lies on
FlexLAM's side of zero, ``worse`` when it lies on the fixed LAM's side, ``tie`` when it straddles it
(the sign is flipped for lower-is-better metrics such as reconstruction error). With 5 seeds a
percentile bootstrap is somewhat narrow (coverage below the nominal 95%); ``ci95`` is reported so a
reader can judge the margin. A cell with one seed has no interval and no verdict (``pending``):
an interim report of a run still in progress counts only the cells with at least two seeds.
"""

from __future__ import annotations

import numpy as np

BOOTSTRAP_REPS = 10_000
BOOTSTRAP_SEED = 0  # the resampling itself is seeded: the same results give the same intervals
VERDICTS = ("better", "tie", "worse")
PENDING = "pending"  # a cell with a single seed: no interval, no verdict, not counted


def paired_difference_ci(diffs: np.ndarray, reps: int = BOOTSTRAP_REPS, level: float = 0.95,
                         seed: int = BOOTSTRAP_SEED) -> tuple[float, tuple[float, float]]:
    """Mean of ``diffs [n_seeds, n_tasks]`` (paired by seed) and its stratified percentile bootstrap interval."""
    diffs = np.asarray(diffs, dtype=np.float64)
    if diffs.ndim == 1:
        diffs = diffs[:, None]
    n_seeds, n_tasks = diffs.shape
    if n_seeds < 2:  # one seed has no spread to resample: no interval
        return float(diffs.mean()), (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, n_seeds, size=(reps, n_seeds, n_tasks))  # seeds resampled within each task (stratum)
    means = np.take_along_axis(np.broadcast_to(diffs, (reps, n_seeds, n_tasks)), picks, axis=1).mean(axis=(1, 2))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(diffs.mean()), (float(low), float(high))


def chance_verdict_rate(n_seeds: int, level: float = 0.95) -> float | None:
    """How often a cell gets ``better`` or ``worse`` when FlexLAM and fixed do not differ, where the interval
    degenerates to the range of the seeds' differences (``None`` where it does not).

    With n seeds, all n resamples picking the lowest seed has probability (1/n)^n; while that is at least the
    lower tail (n <= 3 at 95%), the interval's ends are the seeds' own minimum and maximum, so a verdict means
    only that every seed agrees in sign: with symmetric noise, 2 * 0.5^n of null cells (25% at 3 seeds).
    """
    if n_seeds < 2 or (1 / n_seeds) ** n_seeds < (1 - level) / 2:
        return None
    return 2 * 0.5**n_seeds


def verdict(ci: tuple[float, float], higher_is_better: bool) -> str:
    """``better`` / ``tie`` / ``worse`` for FlexLAM, from the interval of FlexLAM minus fixed (``pending``
    without an interval, i.e. from a single seed)."""
    low, high = ci
    if np.isnan(low) or np.isnan(high):
        return PENDING
    if low > 0:
        return "better" if higher_is_better else "worse"
    if high < 0:
        return "worse" if higher_is_better else "better"
    return "tie"
