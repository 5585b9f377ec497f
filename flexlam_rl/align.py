"""Align latent actions to real actions with a few labels: the translator.

The translator reads exactly what the LAM's decoder reads, the null-filled prefix latent
``[B, K, D]`` for budget k (optionally with an o_t feature), and outputs a real action:
a classifier for ``Discrete``, a tanh-squashed regressor for bounded ``Box``. Trained with a
random prefix length per example, one translator serves every budget; ``train_prefix=k``
gives the per-budget comparison. It always trains for a fixed number of updates, whatever
the label count, so budgets and label fractions compare fairly.

A supervised inverse-dynamics model trained on the same labels is the reference it is
reported against.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, Sequence

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import ConfigError, _check_int, _plain
from .data import TransitionSet
from .model import ArrayLike, FlexLAM, ImageIDM, VectorIDM, check_prefix_len, null_fill


# ------------------------------------------------------------------ action spaces
def action_spec(space: gym.Space) -> dict[str, Any]:
    """A JSON description of an action space a translator can output."""
    if isinstance(space, gym.spaces.Discrete):
        return {"type": "discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, gym.spaces.Box) and len(space.shape) == 1:
        return {"type": "box", "shape": list(space.shape), "low": space.low.tolist(), "high": space.high.tolist()}
    raise ValueError(
        f"A translator can output Discrete or 1-D Box actions, not {space}. Flatten the action space "
        f"(gymnasium.wrappers.FlattenAction) or use a Discrete/Box env."
    )


def check_action_space_fits(spec: Mapping[str, Any], space: gym.Space) -> None:
    """Raise a clear error when an env's action space is not the one the translator was trained for."""
    try:
        got = action_spec(space)
    except ValueError as exc:
        raise ValueError(f"This env's action space does not fit the translator: {exc}") from None
    same = got["type"] == spec["type"] and (
        (got["type"] == "discrete" and got["n"] == spec["n"] and got["start"] == spec.get("start", 0))
        or (got["type"] == "box" and got["shape"] == list(spec["shape"])
            and np.allclose(got["low"], spec["low"]) and np.allclose(got["high"], spec["high"]))
    )
    if not same:
        raise ValueError(
            f"The translator outputs actions for {_describe(spec)}, but this env's action space is {space}. "
            f"Align a translator on data from this env (flexlam-align), or wrap a matching env."
        )


def _bounds(spec: Mapping[str, Any], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    low = torch.tensor(spec["low"], dtype=torch.float32, device=device)
    high = torch.tensor(spec["high"], dtype=torch.float32, device=device)
    finite = torch.isfinite(low) & torch.isfinite(high)  # unbounded dims use [-1, 1] as the scale
    return torch.where(finite, low, -1.0), torch.where(finite, high, 1.0)


def box_to_unit(spec: Mapping[str, Any], action: torch.Tensor) -> torch.Tensor:
    """Box actions -> [-1, 1], the range of the tanh-squashed heads."""
    low, high = _bounds(spec, action.device)
    return (2 * (action - low) / (high - low) - 1).clamp(-1, 1)


def box_from_unit(spec: Mapping[str, Any], unit: torch.Tensor) -> torch.Tensor:
    low, high = _bounds(spec, unit.device)
    return low + (unit + 1) * 0.5 * (high - low)


def _describe(spec: Mapping[str, Any]) -> str:
    if spec["type"] == "discrete":
        return f"Discrete({spec['n']})"
    return f"Box(low={spec['low']}, high={spec['high']}, shape={tuple(spec['shape'])})"


# ------------------------------------------------------------------- translator
@dataclass
class TranslatorConfig:
    """Shapes of the latent it reads and the action it writes; ``train_prefix`` is provenance."""

    num_tokens: int
    latent_dim: int
    action: dict[str, Any]
    hidden_dim: int = 256
    num_layers: int = 2
    use_obs: bool = False
    obs_shape: list[int] | None = None
    obs_channels: list[int] = field(default_factory=lambda: [16, 32, 64])
    train_prefix: int | None = None  # None: random prefix per example (serves every k)

    def __post_init__(self) -> None:
        _check_int("num_tokens", self.num_tokens, 1, 64)
        _check_int("latent_dim", self.latent_dim, 1, 4096)
        _check_int("hidden_dim", self.hidden_dim, 1, 16384)
        _check_int("num_layers", self.num_layers, 1, 8)
        if not isinstance(self.action, dict) or self.action.get("type") not in ("discrete", "box"):
            raise ConfigError(f"translator action must be a discrete or box spec, got {self.action!r}.")
        if self.action["type"] == "discrete":
            _check_int("action n", self.action.get("n"), 1, 100_000)
        else:
            shape = self.action.get("shape")
            if not isinstance(shape, list) or len(shape) != 1:
                raise ConfigError(f"box action shape must be [A], got {shape!r}.")
            _check_int("action dim", shape[0], 1, 4096)
            for key in ("low", "high"):
                if not isinstance(self.action.get(key), list) or len(self.action[key]) != shape[0]:
                    raise ConfigError(f"box action '{key}' must be a list of {shape[0]} numbers.")
        if not isinstance(self.use_obs, bool):
            raise ConfigError(f"use_obs must be true or false, got {self.use_obs!r}.")
        if self.use_obs and (not isinstance(self.obs_shape, list) or len(self.obs_shape) not in (1, 3)):
            raise ConfigError(f"use_obs needs obs_shape [H, W, C] or [D], got {self.obs_shape!r}.")
        if self.train_prefix is not None:
            _check_int("train_prefix", self.train_prefix, 1, self.num_tokens)

    @property
    def out_dim(self) -> int:
        return self.action["n"] if self.action["type"] == "discrete" else self.action["shape"][0]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TranslatorConfig:
        if not isinstance(data, Mapping):
            raise ConfigError(f"translator config must be a JSON object, got {type(data).__name__}.")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"Unknown translator config keys {unknown}; known keys: {sorted(known)}.")
        try:
            return cls(**{k: _plain(v) for k, v in data.items()})
        except TypeError as exc:
            raise ConfigError(f"Malformed translator config: {exc}") from None


class Translator(nn.Module):
    """Null-filled prefix latent ``[B, K, D]`` (+ o_t) -> real action.

    ``forward`` returns logits ``[B, n]`` (Discrete) or actions in [-1, 1] ``[B, A]`` (Box,
    rescaled to the bounds by :meth:`predict`).
    """

    def __init__(self, config: TranslatorConfig):
        super().__init__()
        self.config = config
        in_dim = config.num_tokens * config.latent_dim
        self.obs_encoder: nn.Module | None = None
        if config.use_obs:
            shape = config.obs_shape
            if len(shape) == 3:
                self.obs_encoder = _ObsCNN(shape[2], config.obs_channels, config.hidden_dim)
            else:
                self.obs_encoder = nn.Sequential(nn.Linear(shape[0], config.hidden_dim), nn.GELU())
            in_dim += config.hidden_dim
        layers: list[nn.Module] = []
        for _ in range(config.num_layers):
            layers += [nn.Linear(in_dim, config.hidden_dim), nn.GELU()]
            in_dim = config.hidden_dim
        layers.append(nn.Linear(in_dim, config.out_dim))
        self.net = nn.Sequential(*layers)
        dim = 1 if not config.use_obs or len(config.obs_shape) == 3 else config.obs_shape[0]
        self.register_buffer("obs_mean", torch.zeros(dim))
        self.register_buffer("obs_std", torch.ones(dim))

    @property
    def is_discrete(self) -> bool:
        return self.config.action["type"] == "discrete"

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def _obs_features(self, obs: ArrayLike | None, batch: int) -> torch.Tensor | None:
        if self.obs_encoder is None:
            return None
        if obs is None:
            raise ValueError("This translator was trained with o_t features (use_obs=true); pass obs.")
        x = torch.as_tensor(np.asarray(obs)) if not torch.is_tensor(obs) else obs
        x = x.to(self.device)
        if len(self.config.obs_shape) == 3:
            x = x.permute(0, 3, 1, 2).float() / 255.0
        else:
            x = (x.float() - self.obs_mean) / self.obs_std
        return self.obs_encoder(x)

    def forward(self, latent: torch.Tensor, obs: ArrayLike | None = None) -> torch.Tensor:
        expected = (self.config.num_tokens, self.config.latent_dim)
        if latent.ndim != 3 or tuple(latent.shape[1:]) != expected:
            raise ValueError(f"latent must be [B, {expected[0]}, {expected[1]}] (from lam.embed), got {tuple(latent.shape)}.")
        h = latent.flatten(1).to(self.device, torch.float32)
        feats = self._obs_features(obs, h.shape[0])
        if feats is not None:
            h = torch.cat([h, feats], dim=-1)
        out = self.net(h)
        return out if self.is_discrete else torch.tanh(out)

    @torch.no_grad()
    def predict(self, latent: torch.Tensor, obs: ArrayLike | None = None) -> np.ndarray:
        """Env actions for a batch: ``[B]`` ints (Discrete) or ``[B, A]`` floats within the bounds (Box)."""
        out = self(latent, obs)
        if self.is_discrete:
            return (out.argmax(-1) + self.config.action.get("start", 0)).cpu().numpy()
        return box_from_unit(self.config.action, out).cpu().numpy().astype(np.float32)

    def loss(self, latent: torch.Tensor, actions: torch.Tensor, obs: ArrayLike | None = None) -> torch.Tensor:
        out = self(latent, obs)
        if self.is_discrete:
            return F.cross_entropy(out, actions.long().to(out.device) - self.config.action.get("start", 0))
        return F.mse_loss(out, box_to_unit(self.config.action, actions.float().to(out.device)))

    def save(self, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
        from .checkpoint import save_module

        return save_module(self, path, kind="translator", config=self.config.to_dict(), extra=extra)

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> Translator:
        from .checkpoint import load_module

        return load_module(path, kind="translator", build=lambda c: cls(TranslatorConfig.from_dict(c)), device=device)


class _ObsCNN(nn.Module):
    def __init__(self, in_channels: int, channels: Sequence[int], out_dim: int):
        super().__init__()
        layers, c_prev = [], in_channels
        for width in channels:
            layers += [nn.Conv2d(c_prev, width, 4, 2, 1), nn.GELU()]
            c_prev = width
        self.net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(c_prev * 16, out_dim), nn.GELU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


# ---------------------------------------------------------------------- labels
PROTOCOLS = ("standard", "low_return")


@dataclass
class LabelConfig:
    """Which transitions get action labels.

    ``standard``: a random ``fraction`` (or ``count``) of the label pool's transitions.
    ``low_return``: the pool is first cut to episodes whose return is at most the
    ``quantile``-th quantile of episode returns, or at most ``max_return`` when that is set
    (a low-return, single-task stress test).
    """

    protocol: str = "standard"
    fraction: float | None = 0.02
    count: int | None = None
    quantile: float = 0.25
    max_return: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"labels.protocol must be one of {PROTOCOLS}, got {self.protocol!r}.")
        if self.count is not None:
            if not isinstance(self.count, int) or isinstance(self.count, bool) or self.count < 1:
                raise ValueError(f"labels.count must be a positive integer, got {self.count!r}.")
        elif self.fraction is None or not isinstance(self.fraction, (int, float)) or not 0.0 < self.fraction <= 1.0:
            raise ValueError(
                f"labels.fraction must be in (0, 1] (e.g. 0.02 for 2% of transitions), got {self.fraction!r}; "
                f"or set labels.count to a number of labeled transitions."
            )
        if not 0.0 < self.quantile <= 1.0:
            raise ValueError(f"labels.quantile must be in (0, 1], got {self.quantile!r}.")


def select_labels(pool: TransitionSet, cfg: LabelConfig) -> np.ndarray:
    """Indices into ``pool`` of the labeled transitions (sorted)."""
    if not pool.has_actions:
        raise ValueError(
            f"The label datasets {[s.source_id for s in pool.sources]} store no usable actions; labels need "
            f"a dataset with Discrete or Box actions."
        )
    candidates = np.arange(len(pool))
    if cfg.protocol == "low_return":
        returns = np.array([pool.sources[s].episode_returns[e] for s, e in pool.episodes])
        if cfg.max_return is not None:
            cutoff, what = cfg.max_return, f"return <= labels.max_return={cfg.max_return}"
        else:
            cutoff = np.quantile(returns, cfg.quantile) if len(returns) else math.nan
            what = f"return at or below the {cfg.quantile} quantile"
        low = {ep for ep, r in zip(pool.episodes, returns) if r <= cutoff}
        if not low:
            lowest = f"; the lowest episode return is {returns.min():.3f}" if len(returns) else " (the pool has no episodes)"
            raise ValueError(f"No label episodes with {what}{lowest}. Raise the threshold or use other label datasets.")
        keep = np.array([(int(s), int(e)) in low for s, e in zip(pool.source_index, pool.episode_index)], dtype=bool)
        candidates = candidates[keep]
    if len(candidates) == 0:
        raise ValueError("The label pool holds no transitions.")
    wanted = cfg.count if cfg.count is not None else max(1, int(round(cfg.fraction * len(pool))))
    if wanted > len(candidates):
        where = "low-return episodes" if cfg.protocol == "low_return" else "the label datasets"
        raise ValueError(
            f"{wanted} labeled transitions requested, but {where} hold only {len(candidates)}. Lower labels.count/"
            f"labels.fraction{' or raise labels.quantile' if cfg.protocol == 'low_return' else ''}."
        )
    rng = np.random.default_rng(cfg.seed)
    return np.sort(rng.choice(candidates, size=wanted, replace=False))


# ---------------------------------------------------------------------- training
@dataclass
class AlignConfig:
    """Translator training: fixed updates whatever the label count."""

    steps: int = 2000
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-4
    hidden_dim: int = 256
    num_layers: int = 2
    use_obs: bool = False
    train_prefix: int | None = None
    seed: int = 0


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
        raise ValueError("These transitions have no actions to align to.")
    slots = [lam.embed(lam.encode(batch["obs"][i : i + batch_size], batch["next_obs"][i : i + batch_size]), lam.num_tokens)
             for i in range(0, len(idx), batch_size)]
    return LabeledSet(torch.cat(slots).cpu(), torch.as_tensor(batch["action"]), batch["obs"], batch["next_obs"])


def train_translator(lam: FlexLAM, labeled: LabeledSet, action_space_spec: dict[str, Any], cfg: AlignConfig) -> Translator:
    """Fit a translator on the labeled set for exactly ``cfg.steps`` updates.

    Random prefix lengths (one translator for every budget) only make sense for a LAM trained with
    nested dropout; a fixed-capacity LAM is defined at its full K alone, so its translator trains there.
    """
    train_prefix = cfg.train_prefix
    if train_prefix is None and not lam.config.nested_dropout:
        train_prefix = lam.num_tokens
    if train_prefix is not None:
        check_prefix_len(train_prefix, lam.num_tokens)
    torch.manual_seed(cfg.seed)
    tcfg = TranslatorConfig(
        num_tokens=lam.num_tokens, latent_dim=lam.latent_dim, action=action_space_spec, hidden_dim=cfg.hidden_dim,
        num_layers=cfg.num_layers, use_obs=cfg.use_obs, obs_shape=list(lam.config.obs_shape) if cfg.use_obs else None,
        train_prefix=train_prefix,
    )
    translator = Translator(tcfg)
    if cfg.use_obs and not lam.config.is_image:
        translator.obs_mean.copy_(lam.obs_mean)
        translator.obs_std.copy_(lam.obs_std)
    optimizer = torch.optim.AdamW(translator.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    null = lam.null_latent.detach().cpu()
    gen = torch.Generator().manual_seed(cfg.seed)
    n = len(labeled.actions)
    translator.train()
    for _ in range(cfg.steps):
        idx = torch.randint(0, n, (cfg.batch_size,), generator=gen)
        if train_prefix is None:
            prefix = torch.randint(1, lam.num_tokens + 1, (cfg.batch_size,), generator=gen)
        else:
            prefix = torch.full((cfg.batch_size,), train_prefix)
        latent = null_fill(labeled.slots[idx], prefix, null)
        obs = labeled.obs[idx.numpy()] if cfg.use_obs else None
        loss = translator.loss(latent, labeled.actions[idx], obs)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return translator.eval()


@torch.no_grad()
def alignment_by_budget(
    lam: FlexLAM, translator: Translator, evaluation: LabeledSet, budgets: Sequence[int] | None = None
) -> dict[int, float]:
    """Held-out accuracy (Discrete) or R^2 (Box) of translated actions per budget k."""
    budgets = list(budgets) if budgets is not None else list(range(1, lam.num_tokens + 1))
    null = lam.null_latent.detach().cpu()
    scores = {}
    for k in budgets:
        check_prefix_len(k, lam.num_tokens)
        latent = null_fill(evaluation.slots, k, null)
        pred = translator.predict(latent, evaluation.obs if translator.config.use_obs else None)
        scores[int(k)] = action_score(pred, evaluation.actions.numpy(), translator.is_discrete)
    return scores


def action_score(pred: np.ndarray, target: np.ndarray, discrete: bool) -> float:
    """Accuracy for discrete actions; R^2 (uniformly averaged over dimensions) for continuous."""
    if discrete:
        return float(np.mean(pred.reshape(-1) == target.reshape(-1)))
    pred, target = pred.reshape(len(pred), -1).astype(np.float64), target.reshape(len(target), -1).astype(np.float64)
    ss_res = ((target - pred) ** 2).sum(0)
    ss_tot = ((target - target.mean(0)) ** 2).sum(0)
    defined = ss_tot > 1e-8 * len(target)  # R^2 is undefined for a (near-)constant target dimension
    if not defined.any():
        return float("nan")
    return float(np.mean(1.0 - ss_res[defined] / ss_tot[defined]))


# ------------------------------------------------------------ supervised reference
class SupervisedIDM(nn.Module):
    """(o_t, o_t+1) -> action, trained directly on the labels: the reference for the translator."""

    def __init__(self, obs_shape: Sequence[int], spec: dict[str, Any], channels: Sequence[int], hidden: int):
        super().__init__()
        self.spec = spec
        self.is_image = len(obs_shape) == 3
        out = spec["n"] if spec["type"] == "discrete" else spec["shape"][0]
        self.net = (ImageIDM(obs_shape[2], list(channels), hidden, out) if self.is_image
                    else VectorIDM(obs_shape[0], hidden, out))
        self.register_buffer("obs_mean", torch.zeros(1 if self.is_image else obs_shape[0]))
        self.register_buffer("obs_std", torch.ones(1 if self.is_image else obs_shape[0]))

    def _prep(self, obs: np.ndarray) -> torch.Tensor:
        x = torch.as_tensor(obs)
        return x.permute(0, 3, 1, 2).float() / 255.0 if self.is_image else (x.float() - self.obs_mean) / self.obs_std

    def forward(self, obs: np.ndarray, next_obs: np.ndarray) -> torch.Tensor:
        return self.net(self._prep(obs), self._prep(next_obs))


def train_supervised_idm(lam: FlexLAM, labeled: LabeledSet, spec: dict[str, Any], cfg: AlignConfig) -> SupervisedIDM:
    """Same labels, same number of updates, the LAM's encoder architecture, no LAM pretraining."""
    torch.manual_seed(cfg.seed)
    model = SupervisedIDM(lam.config.obs_shape, spec, lam.config.channels, lam.config.hidden_dim)
    if not lam.config.is_image:
        model.obs_mean.copy_(lam.obs_mean)
        model.obs_std.copy_(lam.obs_std)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    n = len(labeled.actions)
    for _ in range(cfg.steps):
        idx = torch.randint(0, n, (min(cfg.batch_size, 64),), generator=gen).numpy()
        out = model(labeled.obs[idx], labeled.next_obs[idx])
        target = labeled.actions[idx]
        if spec["type"] == "discrete":
            loss = F.cross_entropy(out, target.long() - spec.get("start", 0))
        else:
            loss = F.mse_loss(torch.tanh(out), box_to_unit(spec, target.float()))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return model.eval()


@torch.no_grad()
def supervised_idm_score(model: SupervisedIDM, evaluation: LabeledSet, batch_size: int = 256) -> float:
    preds = []
    for i in range(0, len(evaluation.actions), batch_size):
        out = model(evaluation.obs[i : i + batch_size], evaluation.next_obs[i : i + batch_size])
        if model.spec["type"] == "discrete":
            preds.append((out.argmax(-1) + model.spec.get("start", 0)).numpy())
        else:
            preds.append(box_from_unit(model.spec, torch.tanh(out)).numpy())
    return action_score(np.concatenate(preds), evaluation.actions.numpy(), model.spec["type"] == "discrete")
