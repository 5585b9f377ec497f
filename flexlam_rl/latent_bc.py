"""Latent behaviour cloning ("latent-token evaluator"): o_t -> the tokens the IDM assigns.

Trained on action-free expert data: the targets are ``lam.encode(o_t, o_t+1)``, never the
actions. At budget k the policy's first k tokens go through the LAM's null-filled prefix
and the translator (via :class:`~flexlam_rl.wrappers.LatentActionWrapper`), and the
policy is scored by its mean episode return in the env. One policy predicts all K slots,
so a FlexLAM is evaluated at every budget with the same policy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import ConfigError, _check_int, _plain
from .data import TransitionSet
from .model import FlexLAM, check_prefix_len


@dataclass
class LatentBCConfig:
    obs_shape: list[int]
    num_tokens: int
    codebook_size: int
    channels: list[int] = field(default_factory=lambda: [16, 32, 64])
    hidden_dim: int = 256

    def __post_init__(self) -> None:
        if not isinstance(self.obs_shape, list) or len(self.obs_shape) not in (1, 3):
            raise ConfigError(f"obs_shape must be [H, W, C] or [D], got {self.obs_shape!r}.")
        for s in self.obs_shape:
            _check_int("obs_shape entry", s, 1, 4096)
        _check_int("num_tokens", self.num_tokens, 1, 64)
        _check_int("codebook_size", self.codebook_size, 2, 65536)
        _check_int("hidden_dim", self.hidden_dim, 1, 16384)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LatentBCConfig:
        known = {f.name for f in fields(cls)}
        if not isinstance(data, Mapping) or set(data) - known:
            raise ConfigError(f"Malformed latent BC config; known keys: {sorted(known)}.")
        try:
            return cls(**{k: _plain(v) for k, v in data.items()})
        except TypeError as exc:
            raise ConfigError(f"Malformed latent BC config: {exc}") from None


class LatentBCPolicy(nn.Module):
    """``obs [B, ...] -> logits [B, K, V]`` over the LAM's tokens, one head per slot."""

    def __init__(self, config: LatentBCConfig):
        super().__init__()
        self.config = config
        shape = config.obs_shape
        if len(shape) == 3:
            layers, c_prev = [], shape[2]
            for width in config.channels:
                layers += [nn.Conv2d(c_prev, width, 4, 2, 1), nn.GroupNorm(1, width), nn.GELU()]
                c_prev = width
            self.encoder = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(c_prev * 16, config.hidden_dim), nn.GELU())
        else:
            self.encoder = nn.Sequential(nn.Linear(shape[0], config.hidden_dim), nn.GELU(), nn.Linear(config.hidden_dim, config.hidden_dim), nn.GELU())
        self.head = nn.Linear(config.hidden_dim, config.num_tokens * config.codebook_size)
        self.register_buffer("obs_mean", torch.zeros(1 if len(shape) == 3 else shape[0]))
        self.register_buffer("obs_std", torch.ones(1 if len(shape) == 3 else shape[0]))

    def forward(self, obs: np.ndarray | torch.Tensor) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(obs)) if not torch.is_tensor(obs) else obs
        x = x.to(self.head.weight.device)
        x = x.permute(0, 3, 1, 2).float() / 255.0 if len(self.config.obs_shape) == 3 else (x.float() - self.obs_mean) / self.obs_std
        return self.head(self.encoder(x)).view(-1, self.config.num_tokens, self.config.codebook_size)

    @torch.no_grad()
    def act(self, obs: np.ndarray, prefix_len: int) -> np.ndarray:
        """Greedy tokens ``[B, k]`` for budget k (the first k slots)."""
        k = check_prefix_len(prefix_len, self.config.num_tokens)
        return self(obs)[:, :k].argmax(-1).cpu().numpy()

    def save(self, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
        from .checkpoint import save_module

        return save_module(self, path, kind="latent_bc", config=asdict(self.config), extra=extra)

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> LatentBCPolicy:
        from .checkpoint import load_module

        return load_module(path, kind="latent_bc", build=lambda c: cls(LatentBCConfig.from_dict(c)), device=device)


@dataclass
class LatentBCTrainConfig:
    steps: int = 1500
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0


@torch.no_grad()
def token_targets(lam: FlexLAM, data: TransitionSet, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """All transitions' o_t and the IDM's tokens for them: ``([N, ...], [N, K])``."""
    obs, tokens = [], []
    for start in range(0, len(data), batch_size):
        batch = data.__getitems__(range(start, min(start + batch_size, len(data))))
        obs.append(batch["obs"])
        tokens.append(lam.encode(batch["obs"], batch["next_obs"]).cpu().numpy())
    return np.concatenate(obs), np.concatenate(tokens)


def train_latent_bc(lam: FlexLAM, expert: TransitionSet, cfg: LatentBCTrainConfig) -> LatentBCPolicy:
    """Clone the IDM's tokens on action-free expert transitions (actions are never read)."""
    if len(expert) == 0:
        raise ValueError("No expert transitions to clone; collect an expert dataset first (flexlam-collect behaviour=expert).")
    torch.manual_seed(cfg.seed)
    obs, tokens = token_targets(lam, expert)
    policy = LatentBCPolicy(LatentBCConfig(list(lam.config.obs_shape), lam.num_tokens, lam.codebook_size,
                                           list(lam.config.channels), lam.config.hidden_dim))
    if not lam.config.is_image:
        policy.obs_mean.copy_(lam.obs_mean)
        policy.obs_std.copy_(lam.obs_std)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    targets = torch.as_tensor(tokens)
    policy.train()
    for _ in range(cfg.steps):
        idx = torch.randint(0, len(obs), (cfg.batch_size,), generator=gen)
        logits = policy(obs[idx.numpy()])
        loss = F.cross_entropy(logits.reshape(-1, lam.codebook_size), targets[idx].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return policy.eval()


def rollout_returns(env: gym.Env, act: Callable[[np.ndarray], Any], episodes: int, seed: int,
                    frames: list[np.ndarray] | None = None) -> list[float]:
    """Undiscounted returns of ``act`` over ``episodes`` episodes (reset seeds ``seed + i``).

    When ``frames`` is given, the observations of the first episode are appended to it.
    """
    returns = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        total, done = 0.0, False
        record = frames is not None and i == 0
        if record:
            frames.append(np.asarray(obs))
        while not done:
            obs, reward, terminated, truncated, _ = env.step(act(obs))
            total += float(reward)
            done = terminated or truncated
            if record:
                frames.append(np.asarray(obs))
        returns.append(total)
    return returns


def evaluate_latent_bc(policy: LatentBCPolicy, make_env: Callable[[int], gym.Env], budgets: Sequence[int],
                       episodes: int, seed: int) -> dict[int, dict[str, float]]:
    """Mean/stderr return of the latent BC policy at each budget (``make_env(k)`` builds the latent env)."""
    out = {}
    for k in budgets:
        env = make_env(int(k))
        returns = rollout_returns(env, lambda o, k=k: policy.act(np.asarray(o)[None], k)[0], episodes, seed)
        env.close()
        out[int(k)] = {"mean": float(np.mean(returns)), "stderr": float(np.std(returns) / np.sqrt(len(returns)))}
    return out
