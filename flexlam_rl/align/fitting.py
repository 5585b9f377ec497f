"""Fit a translator on labeled transitions (no label selection, no scoring: :mod:`flexlam_rl.align.training`).

The translator reads exactly what the LAM's decoder reads, the null-filled prefix latent
``[B, K, D]`` for budget k (optionally with an o_t feature). Trained with a random prefix length
per example, one translator serves every budget; ``train_prefix=k`` gives the per-budget
comparison. It always trains for a fixed number of updates, whatever the label count, so budgets
and label fractions compare fairly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..data.transitions import TransitionSet
from ..errors import DataError
from ..fit import FitConfig, fit, fit_progress, seeded
from ..model.budgets import check_prefix_len
from ..model.lam import FlexLAM, null_fill
from .translator import Translator, TranslatorConfig


@dataclass
class AlignConfig(FitConfig):
    """Translator training (the Hydra ``translator`` group): fixed updates whatever the label count."""

    steps: int = 2000
    batch_size: int = 128
    hidden_dim: int = 256
    num_layers: int = 2
    use_obs: bool = False
    train_prefix: int | None = None


@dataclass
class LabeledSet:
    """Labeled transitions with their LAM slot embeddings (no budget applied yet)."""

    slots: torch.Tensor  # [N, K, D]
    actions: torch.Tensor  # [N] or [N, A]
    obs: np.ndarray  # [N, ...] o_t, for translators with o_t features
    next_obs: np.ndarray


@torch.no_grad()
def embed_transitions(lam: FlexLAM, data: TransitionSet, indices: Sequence[int] | np.ndarray, batch_size: int = 256) -> LabeledSet:
    """Encode transitions with the frozen LAM: slots ``[N, K, D]`` = ``lam.embed(tokens, K)``."""
    idx = np.asarray(indices, dtype=np.int64)
    batch = data.__getitems__(idx)
    if "action" not in batch:
        raise DataError("These transitions have no actions to align to.")
    slots = lam.embed(lam.encode_many(batch["obs"], batch["next_obs"], batch_size), lam.num_tokens)
    return LabeledSet(slots.cpu(), torch.as_tensor(batch["action"]), batch["obs"], batch["next_obs"])


def train_translator(lam: FlexLAM, labeled: LabeledSet, action_space_spec: dict[str, Any], cfg: AlignConfig,
                     log: Callable[[str], None] | None = None) -> Translator:
    """Fit a translator on the labeled set for exactly ``cfg.steps`` updates (``log``: a progress line ten times).

    Random prefix lengths (one translator for every budget) only make sense for a LAM trained with
    nested dropout; a fixed-capacity LAM is defined at its full K alone, so its translator trains there.
    """
    train_prefix = cfg.train_prefix
    if train_prefix is None and not lam.config.nested_dropout:
        train_prefix = lam.num_tokens
    if train_prefix is not None:
        check_prefix_len(train_prefix, lam.num_tokens)
    tcfg = TranslatorConfig(
        num_tokens=lam.num_tokens, latent_dim=lam.latent_dim, action=action_space_spec, hidden_dim=cfg.hidden_dim,
        num_layers=cfg.num_layers, use_obs=cfg.use_obs, obs_shape=list(lam.config.obs_shape) if cfg.use_obs else None,
        train_prefix=train_prefix, lam_fingerprint=lam.fingerprint(),
    )
    with seeded(cfg.seed):
        translator = Translator(tcfg)
    if cfg.use_obs:
        translator.copy_obs_stats(lam)
    null = lam.null_latent.detach().cpu()

    def batch_loss(idx: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if train_prefix is None:
            prefix = torch.randint(1, lam.num_tokens + 1, (len(idx),), generator=generator)
        else:
            prefix = torch.full((len(idx),), train_prefix)
        obs = labeled.obs[idx.numpy()] if cfg.use_obs else None
        return translator.loss(null_fill(labeled.slots[idx], prefix, null), labeled.actions[idx], obs)

    return fit(translator, batch_loss, len(labeled.actions), cfg, progress=fit_progress("translator", cfg.steps, log))
