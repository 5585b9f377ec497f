"""When training stops: checks on the validation split, the objective they log, and the plateau rule (fixed before any verdict)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .budgets import prefix_weights
from .config import TrainConfig
from .data import TransitionData
from .model import FlexLAM


def window_change(losses: list[float], window: int) -> float | None:
    """The plateau statistic: relative change of the mean of the last ``window`` losses against the
    ``window`` before (negative: still improving). None until there are two windows."""
    if len(losses) < 2 * window:
        return None
    recent = sum(losses[-window:]) / window
    before = sum(losses[-2 * window : -window]) / window
    if before == 0:  # a loss at exactly 0 (one expert action, saturated logits): nothing left to improve
        return 0.0 if recent == 0 else float("inf")
    return recent / before - 1.0


class Plateau:
    """When every budget's validation error has stopped improving (the rule is fixed before any result is seen).

    After each check (one error per budget the model serves: all of 1..K for a FlexLAM, its K for a fixed
    LAM): a budget has plateaued when the mean error of its last ``window`` checks of the current LR phase
    is not ``tol`` (relative) below the mean of the ``window`` checks before them; the model has plateaued
    when every budget has. So a FlexLAM is judged at each budget by the rule that judges the fixed LAM of
    that budget: no averaged objective that its k = 1 error dominates can stop it while longer prefixes
    still improve. Means, not minima: with discrete tokens one check jumps by 10-20% as codes flip, and a
    minimum-based rule stops on the first lucky dip. The first ``decays`` plateaus multiply the LR by
    ``lr_factor`` and start a new phase; the next one stops training. Everything here is a function of the
    checks, so resuming replays it.
    """

    def __init__(self, cfg: TrainConfig, state: dict[str, Any] | None = None):
        self.window, self.tol, self.decays, self.lr_factor = cfg.plateau_window, cfg.plateau_tol, cfg.plateau_decays, cfg.plateau_lr_factor
        state = state or {}
        self.phase_errors: dict[str, list[float]] = {str(k): list(v) for k, v in state.get("phase_errors", {}).items()}
        self.decays_done: int = int(state.get("decays_done", 0))
        self.stopped: bool = bool(state.get("stopped", False))

    @property
    def lr_scale(self) -> float:
        return self.lr_factor ** self.decays_done

    def changes(self) -> dict[str, float | None]:
        """Each budget's plateau statistic in the current phase (None until it has two windows)."""
        return {k: window_change(v, self.window) for k, v in self.phase_errors.items()}

    def update(self, errors: dict[int, float]) -> None:
        """Record one check: ``{budget: validation error}``."""
        for k, err in errors.items():
            self.phase_errors.setdefault(str(k), []).append(float(err))
        changes = list(self.changes().values())
        if changes and all(change is not None and change > -self.tol for change in changes):
            if self.decays_done < self.decays:
                self.decays_done += 1
                self.phase_errors = {}
            else:
                self.stopped = True

    def state(self) -> dict[str, Any]:
        return {"phase_errors": self.phase_errors, "decays_done": self.decays_done, "stopped": self.stopped}


def heldout_subset(data: TransitionData, size: int) -> np.ndarray:
    """The transitions every check scores: a fixed random ``size`` of ``data.checks`` (the validation split
    where there is one, else the held-out split)."""
    n = len(data.checks)
    return np.sort(np.random.default_rng(0).permutation(n)[: min(size, n)])


def heldout_objective(lam: FlexLAM, mse: dict[int, float]) -> float:
    """The training objective on the checked transitions (logged with each check; the plateau reads the budgets).

    A fixed LAM's error at its K; a FlexLAM's per-budget errors weighted by its prefix distribution
    (uniform: the plain mean over k = 1..K), which is what nested dropout minimizes in expectation.
    """
    if not lam.config.nested_dropout:
        return float(mse[lam.num_tokens])
    weights = prefix_weights(lam.num_tokens, lam.config.prefix_dist, lam.config.geometric_p).tolist()
    return float(sum(w * mse[k] for k, w in zip(range(1, lam.num_tokens + 1), weights)))
