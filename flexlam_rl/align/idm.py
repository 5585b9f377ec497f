"""The supervised inverse-dynamics model: (o_t, o_t+1) -> action on the labels alone, the translator's reference."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from ..fit import fit, seeded
from ..metrics import action_score
from ..model.lam import FlexLAM
from ..model.nets import ImageIDM, ObservationInput, VectorIDM
from .actions import action_loss, output_to_action
from .fitting import AlignConfig, LabeledSet

IDM_MAX_BATCH = 64  # the LAM's own pretraining batch size: the reference trains like the encoder it stands in for


class SupervisedIDM(ObservationInput):
    """(o_t, o_t+1) -> action heads (logits, or [-1, 1] for Box), with the LAM's encoder architecture."""

    def __init__(self, obs_shape: Sequence[int], spec: dict[str, Any], channels: Sequence[int], hidden: int,
                 downsample: str = "stride"):
        super().__init__()
        self.spec = spec
        out = spec["n"] if spec["type"] == "discrete" else spec["shape"][0]
        self.net = (ImageIDM(obs_shape[2], list(channels), hidden, out, downsample) if len(obs_shape) == 3
                    else VectorIDM(obs_shape[0], hidden, out))
        self._init_obs_input(obs_shape)

    def forward(self, obs: np.ndarray, next_obs: np.ndarray) -> torch.Tensor:
        out = self.net(self.obs_input(obs), self.obs_input(next_obs))
        return out if self.spec["type"] == "discrete" else torch.tanh(out)


def train_supervised_idm(lam: FlexLAM, labeled: LabeledSet, spec: dict[str, Any], cfg: AlignConfig,
                         progress: Callable[[int, float], None] | None = None) -> SupervisedIDM:
    """Same labels, same number of updates, the LAM's encoder architecture, no LAM pretraining (``progress``: as
    :func:`~flexlam_rl.fit.fit`'s)."""
    with seeded(cfg.seed):
        model = SupervisedIDM(lam.config.obs_shape, spec, lam.config.channels, lam.config.hidden_dim,
                              lam.config.idm_downsample)
    model.copy_obs_stats(lam)

    def batch_loss(idx: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        rows = idx.numpy()
        return action_loss(spec, model(labeled.obs[rows], labeled.next_obs[rows]), labeled.actions[idx])

    return fit(model, batch_loss, len(labeled.actions), replace(cfg, batch_size=min(cfg.batch_size, IDM_MAX_BATCH)),
               progress=progress)


@torch.no_grad()
def supervised_idm_predict(model: SupervisedIDM, evaluation: LabeledSet, batch_size: int = 256) -> np.ndarray:
    """The IDM's action for every evaluation transition (for scores and confusion matrices)."""
    return np.concatenate([output_to_action(model.spec, model(evaluation.obs[i : i + batch_size],
                                                              evaluation.next_obs[i : i + batch_size]))
                           for i in range(0, len(evaluation.actions), batch_size)])


def supervised_idm_score(model: SupervisedIDM, evaluation: LabeledSet) -> float:
    return action_score(supervised_idm_predict(model, evaluation), evaluation.actions.numpy(), model.spec["type"] == "discrete")
