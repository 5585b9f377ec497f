"""Action labels during pretraining: a few labeled transitions ask the first token(s) to carry the action.

Where the screen is busy (other moving things, distractors), a reconstruction loss alone spends the code on
whatever changes most, and the action can end up nowhere in it. A small head from the latent to the real action,
trained on a small fraction of labeled transitions beside the reconstruction (LAOM's recipe: a linear head, its own
labeled batch each update, a small loss weight), tells the encoder which change matters. With nested dropout the
head has a natural place: the first token(s) (``head: first``), so the prefix becomes "the action" and later tokens
"the rest of the change"; ``head: prefix`` asks every budget's null-filled code instead.

The labels are drawn by the translator's own selection (:func:`~flexlam_rl.align.labels.select_labels` on the
pool :func:`~flexlam_rl.align.labels.label_pool` gives), so ``flexlam-align`` with the same
``labels.fraction``/``count``, ``seed`` and ``heldout_fraction`` uses exactly these transitions: no extra labels.
The LAM records them (``supervision`` in its checkpoint's extra, with a digest of the labeled transitions) and
``flexlam-align`` says whether its labels are the same ones.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..align.actions import action_loss, action_spec, output_to_action
from ..align.labels import LabelConfig, check_actions_agree, label_digest, label_pool, select_labels
from ..config import LAMConfig, check_int, check_optional_positive_int, parse_config
from ..data.transitions import TransitionData, TransitionSet
from ..errors import ConfigError, DataError
from ..fit import seeded
from ..metrics import action_score
from ..model.lam import null_fill

HEADS = ("first", "prefix")


@dataclass
class SupervisionConfig:
    """Action labels while the LAM trains (off unless ``fraction`` or ``count`` is set).

    ``fraction``/``count``, ``seed`` and ``heldout_fraction`` mean what ``labels.*`` of ``flexlam-align`` mean (the
    same values select the same transitions; ``split_seed``, when set, splits the label datasets' episodes instead of
    ``seed``, as the benchmark harness splits by its data seed). ``share`` < 1 trains the head on that share of those
    labels only (a seeded subset: fewer labels in pretraining, none the translator does not also have). ``head``:
    ``first`` reads the first ``tokens`` slots, ``prefix`` the example's null-filled prefix at a budget drawn as nested
    dropout draws it. ``weight`` scales the action loss beside the reconstruction loss; ``batch_size`` labeled
    transitions are drawn for it each update.
    """

    fraction: float | None = None
    count: int | None = None
    seed: int = 0
    heldout_fraction: float = 0.1
    split_seed: int | None = None  # null: seed (as flexlam-align splits)
    share: float = 1.0  # of the selected labels, the share the head trains on
    datasets: list[str] | None = None  # null: the pretraining datasets (all must store actions)
    head: str = "first"
    tokens: int = 1
    weight: float = 0.1
    batch_size: int = 32

    def __post_init__(self) -> None:
        if self.fraction is not None and (isinstance(self.fraction, bool) or not isinstance(self.fraction, (int, float))
                                          or not 0.0 < self.fraction <= 1.0):
            raise ConfigError(f"supervision.fraction must be in (0, 1] (e.g. 0.02 for 2% of transitions), got "
                              f"{self.fraction!r}; null turns supervision off.")
        check_optional_positive_int("supervision.count", self.count, "no count; supervision.fraction decides")
        if self.fraction is not None and self.count is not None:
            raise ConfigError("Set supervision.fraction or supervision.count, not both (count wins in flexlam-align; "
                              "say which one you mean).")
        check_int("supervision.seed", self.seed, 0, 2**31 - 1)
        if not isinstance(self.heldout_fraction, (int, float)) or not 0.0 <= self.heldout_fraction < 1.0:
            raise ConfigError(f"supervision.heldout_fraction must be in [0, 1), got {self.heldout_fraction!r}.")
        if self.split_seed is not None:
            check_int("supervision.split_seed", self.split_seed, 0, 2**31 - 1)
        if isinstance(self.share, bool) or not isinstance(self.share, (int, float)) or not 0 < self.share <= 1:
            raise ConfigError(f"supervision.share must be in (0, 1] (1: every selected label), got {self.share!r}.")
        if self.head not in HEADS:
            raise ConfigError(f"supervision.head must be one of {HEADS}, got {self.head!r}.")
        check_int("supervision.tokens", self.tokens, 1, 64)
        check_int("supervision.batch_size", self.batch_size, 1, 65536)
        if isinstance(self.weight, bool) or not isinstance(self.weight, (int, float)) or not 0 < self.weight <= 1e4:
            raise ConfigError(f"supervision.weight must be a number in (0, 10000], got {self.weight!r}.")
        if self.datasets is not None and (not isinstance(self.datasets, list) or not self.datasets):
            raise ConfigError(f"supervision.datasets must be a non-empty list of dataset ids or null, got {self.datasets!r}.")

    @property
    def enabled(self) -> bool:
        return self.fraction is not None or self.count is not None

    def label_config(self) -> LabelConfig:
        """The translator's label selection with these settings (standard protocol, random strategy: the others read
        a trained LAM, which does not exist yet)."""
        return LabelConfig(fraction=self.fraction if self.count is None else None, count=self.count, seed=self.seed)

    def check_for(self, lam_cfg: LAMConfig) -> None:
        if self.head == "first" and self.tokens > lam_cfg.num_tokens:
            raise ConfigError(f"supervision.tokens={self.tokens} is more than the LAM's {lam_cfg.num_tokens} tokens "
                              f"(lam.num_tokens); pick 1..{lam_cfg.num_tokens}.")

    @classmethod
    def from_dict(cls, values: Any) -> SupervisionConfig:
        return parse_config(cls, values, "supervision")


@dataclass
class PretrainingLabels:
    """The labeled transitions pretraining reads: rows of the training split, and what they are."""

    rows: np.ndarray  # indices into the pretraining data's training split, sorted
    spec: dict[str, Any]  # the action space (action_spec)
    record: dict[str, Any]  # what the LAM records: settings, counts, datasets, digest


def pretraining_labels(data: TransitionData, cfg: SupervisionConfig) -> PretrainingLabels:
    """Select the labels as ``flexlam-align`` would (same pool, same selection) and find them in the training split.

    A selected transition that pretraining holds out (``data.split_seed`` or ``validation_fraction`` other than the
    labels' split), or that ``share`` leaves out, is not trained on; the record says how many were (``labels``: the
    selection, the translator's; ``labels_trained_on``: what the head read).
    """
    ids = list(dict.fromkeys(cfg.datasets or data.dataset_ids))
    by_id = {s.source_id: s for s in data.train.sources}
    unknown = [i for i in ids if i not in by_id]
    if unknown:
        raise ConfigError(f"supervision.datasets {unknown} are not among the pretraining datasets {list(by_id)}; "
                          f"labels come from transitions the LAM trains on.")
    bare = [i for i in ids if by_id[i].actions is None]
    if bare:
        raise DataError(f"Action supervision needs actions, but {bare} store none (video or action-free data). Set "
                        f"supervision.datasets to datasets with actions, or supervision.fraction=null to train without labels.")
    check_actions_agree([by_id[i] for i in ids], [by_id[i] for i in ids])
    pool = label_pool([by_id[i] for i in ids], cfg.heldout_fraction, cfg.seed if cfg.split_seed is None else cfg.split_seed)
    picked = select_labels(pool, cfg.label_config())
    used = picked
    if cfg.share < 1:
        rng = np.random.default_rng([cfg.seed, 1])
        used = np.sort(rng.choice(picked, size=max(1, int(round(cfg.share * len(picked)))), replace=False))
    wanted = set(pool.names(used))
    rows = np.array([i for i, name in enumerate(data.train.names(np.arange(len(data.train)))) if name in wanted], np.int64)
    if len(rows) == 0:
        raise DataError(f"None of the {len(picked)} labeled transitions is in the pretraining training split (split "
                        f"seed and held-out fraction differ from supervision.seed / supervision.heldout_fraction); "
                        f"use the same values for both.")
    spec = action_spec(by_id[ids[0]].action_space)
    record = {**asdict(cfg), "datasets": ids, "labels": len(picked), "labels_trained_on": len(rows),
              "label_digest": label_digest(pool, picked), "action_space": spec}
    return PretrainingLabels(rows, spec, record)


class ActionHead(nn.Module):
    """A linear map from the latent to the real action (logits, or a Box action in [-1, 1] through tanh)."""

    def __init__(self, cfg: SupervisionConfig, lam_cfg: LAMConfig, spec: dict[str, Any]):
        super().__init__()
        self.reads, self.tokens, self.spec = cfg.head, cfg.tokens, spec
        slots = cfg.tokens if cfg.head == "first" else lam_cfg.num_tokens
        out = spec["n"] if spec["type"] == "discrete" else int(np.prod(spec["shape"]))
        self.linear = nn.Linear(slots * lam_cfg.latent_dim, out)

    def forward(self, slots: torch.Tensor, prefix_len: torch.Tensor | None = None, null_latent: torch.Tensor | None = None,
                ) -> torch.Tensor:
        """``slots [B, K, D]`` (the LAM's per-slot embeddings) -> ``[B, n]`` logits or ``[B, A]`` in [-1, 1]."""
        if self.reads == "first":
            latent = slots[:, : self.tokens]
        else:
            latent = null_fill(slots, prefix_len, null_latent)
        out = self.linear(latent.flatten(1))
        return out if self.spec["type"] == "discrete" else torch.tanh(out)


class ActionSupervision:
    """The action loss of one pretraining run: its labels, its head, and a score of the head on checked transitions."""

    def __init__(self, cfg: SupervisionConfig, lam_cfg: LAMConfig, data: TransitionData, seed: int):
        cfg.check_for(lam_cfg)
        self.cfg, self.data = cfg, data
        self.labels = pretraining_labels(data, cfg)
        with seeded(seed + 1):  # the LAM's own weights are seeded by `seed`; the head's are its own
            self.head = ActionHead(cfg, lam_cfg, self.labels.spec)

    def loss(self, lam: Any, generator: torch.Generator) -> torch.Tensor:
        """The weighted action loss on this update's labeled batch (drawn with replacement from the labels)."""
        rows = self.labels.rows
        pick = torch.randint(len(rows), (self.cfg.batch_size,), generator=generator).numpy()
        batch = self.data.train.__getitems__(rows[pick])
        slots = lam.latent_slots(batch["obs"], batch["next_obs"])
        prefix = lam.sample_prefix_len(len(pick), generator) if self.cfg.head == "prefix" else None
        out = self.head(slots, prefix, lam.null_latent)
        return self.cfg.weight * action_loss(self.labels.spec, out, torch.as_tensor(batch["action"]))

    @torch.no_grad()
    def score(self, lam: Any, data: TransitionSet, indices: np.ndarray) -> float | None:
        """The head's accuracy (Discrete) or R^2 (Box) on ``indices`` of ``data`` (at the full code for ``prefix``):
        how much of the action the supervised tokens hold. None where those transitions store no actions."""
        if len(indices) == 0 or not data.has_actions:
            return None
        batch = data.__getitems__(indices)
        slots = lam.latent_slots(batch["obs"], batch["next_obs"])
        out = self.head(slots, torch.full((len(indices),), lam.num_tokens), lam.null_latent).cpu()
        spec = self.labels.spec
        return action_score(output_to_action(spec, out), batch["action"], spec["type"] == "discrete")
