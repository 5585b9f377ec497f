"""The translator: a null-filled prefix latent ``[B, K, D]`` (+ an o_t feature) -> a real action."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config import check_int, parse_config
from ..errors import ConfigError, FlexLAMError
from ..model.nets import ArrayLike, ObservationInput, feature_encoder, mlp
from .actions import action_loss, output_to_action


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
    lam_fingerprint: str | None = None  # FlexLAM.fingerprint() of the LAM it was aligned on (None: made before it was recorded)

    def __post_init__(self) -> None:
        check_int("num_tokens", self.num_tokens, 1, 64)
        check_int("latent_dim", self.latent_dim, 1, 4096)
        check_int("hidden_dim", self.hidden_dim, 1, 16384)
        check_int("num_layers", self.num_layers, 1, 8)
        if not isinstance(self.action, dict) or self.action.get("type") not in ("discrete", "box"):
            raise ConfigError(f"translator action must be a discrete or box spec, got {self.action!r}.")
        if self.action["type"] == "discrete":
            check_int("action n", self.action.get("n"), 1, 100_000)
        else:
            shape = self.action.get("shape")
            if not isinstance(shape, list) or len(shape) != 1:
                raise ConfigError(f"box action shape must be [A], got {shape!r}.")
            check_int("action dim", shape[0], 1, 4096)
            for key in ("low", "high"):
                if not isinstance(self.action.get(key), list) or len(self.action[key]) != shape[0]:
                    raise ConfigError(f"box action '{key}' must be a list of {shape[0]} numbers.")
        if not isinstance(self.use_obs, bool):
            raise ConfigError(f"use_obs must be true or false, got {self.use_obs!r}.")
        if self.use_obs and (not isinstance(self.obs_shape, list) or len(self.obs_shape) not in (1, 3)):
            raise ConfigError(f"use_obs needs obs_shape [H, W, C] or [D], got {self.obs_shape!r}.")
        if self.train_prefix is not None:
            check_int("train_prefix", self.train_prefix, 1, self.num_tokens)

    @property
    def out_dim(self) -> int:
        return self.action["n"] if self.action["type"] == "discrete" else self.action["shape"][0]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TranslatorConfig:
        return parse_config(cls, data, "translator config")


class Translator(ObservationInput):
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
            # No GroupNorm here: with 128 labels on the quickstart LAM it cost 0.05-0.10 accuracy at every k (3 seeds).
            self.obs_encoder = feature_encoder(config.obs_shape, config.obs_channels, config.hidden_dim, norm=False)
            in_dim += config.hidden_dim
        self.net = mlp([in_dim] + [config.hidden_dim] * config.num_layers + [config.out_dim])
        self._init_obs_input(config.obs_shape if config.use_obs else [1])  # without o_t: unused 1-d stats

    @property
    def is_discrete(self) -> bool:
        return self.config.action["type"] == "discrete"

    @property
    def device(self) -> torch.device:
        return self.obs_mean.device

    def obs_features(self, obs: ArrayLike) -> torch.Tensor:
        """The o_t feature ``[B, hidden_dim]`` (only for translators with ``use_obs``): a pure function of o_t,
        so callers that see the same frames again (the wrappers) may cache it."""
        if self.obs_encoder is None:
            raise FlexLAMError("This translator reads no o_t (use_obs=false); it has no o_t features.")
        return self.obs_encoder(self.obs_input(obs))

    def forward(self, latent: torch.Tensor, obs: ArrayLike | None = None, features: torch.Tensor | None = None) -> torch.Tensor:
        """Head outputs for a latent ``[B, K, D]`` and, with ``use_obs``, o_t (or its precomputed ``features``)."""
        expected = (self.config.num_tokens, self.config.latent_dim)
        if latent.ndim != 3 or tuple(latent.shape[1:]) != expected:
            raise FlexLAMError(f"latent must be [B, {expected[0]}, {expected[1]}] (from lam.embed), got {tuple(latent.shape)}.")
        h = latent.flatten(1).to(self.device, torch.float32)
        if self.obs_encoder is not None:
            if features is None and obs is None:
                raise FlexLAMError("This translator was trained with o_t features (use_obs=true); pass obs.")
            h = torch.cat([h, self.obs_features(obs) if features is None else features], dim=-1)
        out = self.net(h)
        return out if self.is_discrete else torch.tanh(out)

    @torch.no_grad()
    def predict(self, latent: torch.Tensor, obs: ArrayLike | None = None, features: torch.Tensor | None = None) -> np.ndarray:
        """Env actions for a batch: ``[B]`` ints (Discrete) or ``[B, A]`` floats within the bounds (Box)."""
        return output_to_action(self.config.action, self(latent, obs, features))

    def loss(self, latent: torch.Tensor, actions: torch.Tensor, obs: ArrayLike | None = None) -> torch.Tensor:
        return action_loss(self.config.action, self(latent, obs), actions)

    def save(self, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
        from ..checkpoint import save_module

        return save_module(self, path, kind="translator", config=self.config.to_dict(), extra=extra)

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> Translator:
        from ..checkpoint import load_module

        return load_module(path, kind="translator", build=lambda c: cls(TranslatorConfig.from_dict(c)), device=device)
