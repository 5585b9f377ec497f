"""When training stops: held-out checks, the objective they score, and the plateau rule (fixed before any verdict)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .budgets import prefix_weights
from .data import TransitionData
from .model import FlexLAM

if TYPE_CHECKING:
    from .train import TrainConfig


def window_change(losses: list[float], window: int) -> float | None:
    """The plateau statistic: relative change of the mean of the last ``window`` losses against the
    ``window`` before (negative: still improving). None until there are two windows."""
    if len(losses) < 2 * window:
        return None
    recent = sum(losses[-window:]) / window
    before = sum(losses[-2 * window : -window]) / window
    return recent / before - 1.0


class Plateau:
    """When a held-out loss has stopped improving (the rule is fixed before any result is seen).

    After each check: a *plateau* is when the mean loss of the last ``window`` checks of the
    current LR phase is not ``tol`` (relative) below the mean of the ``window`` checks before them.
    Means, not minima: with discrete tokens the held-out loss of one check jumps by 10-20% as codes
    flip, and a minimum-based rule stops on the first lucky dip. The first ``decays`` plateaus
    multiply the LR by ``lr_factor`` and start a new phase; the next one stops training. Everything
    here is a function of the checks, so resuming replays it.
    """

    def __init__(self, cfg: TrainConfig, state: dict[str, Any] | None = None):
        self.window, self.tol, self.decays, self.lr_factor = cfg.plateau_window, cfg.plateau_tol, cfg.plateau_decays, cfg.plateau_lr_factor
        state = state or {}
        self.phase_losses: list[float] = list(state.get("phase_losses", []))
        self.decays_done: int = int(state.get("decays_done", 0))
        self.stopped: bool = bool(state.get("stopped", False))

    @property
    def lr_scale(self) -> float:
        return self.lr_factor ** self.decays_done

    def update(self, loss: float) -> None:
        self.phase_losses.append(loss)
        change = window_change(self.phase_losses, self.window)
        if change is not None and change > -self.tol:
            if self.decays_done < self.decays:
                self.decays_done += 1
                self.phase_losses = []
            else:
                self.stopped = True

    def state(self) -> dict[str, Any]:
        return {"phase_losses": self.phase_losses, "decays_done": self.decays_done, "stopped": self.stopped}


def heldout_subset(data: TransitionData, size: int) -> np.ndarray:
    """The held-out transitions every check scores: a fixed random ``size`` of them (all datasets represented)."""
    n = len(data.heldout)
    return np.sort(np.random.default_rng(0).permutation(n)[: min(size, n)])


def heldout_objective(lam: FlexLAM, mse: dict[int, float]) -> float:
    """The held-out loss that decides a plateau: the training objective itself.

    A fixed LAM's error at its K; a FlexLAM's per-budget errors weighted by its prefix distribution
    (uniform: the plain mean over k = 1..K), which is what nested dropout minimizes in expectation.
    The worst budget (k = 1) would stop training while longer prefixes still improve.
    """
    if not lam.config.nested_dropout:
        return float(mse[lam.num_tokens])
    weights = prefix_weights(lam.num_tokens, lam.config.prefix_dist, lam.config.geometric_p).tolist()
    return float(sum(w * mse[k] for k, w in zip(range(1, lam.num_tokens + 1), weights)))
