"""Network pieces every model shares: the conv encoder, MLPs, and reading env observations.

One conv encoder serves the LAM's IDM, the supervised IDM, the translator's o_t feature, the
latent BC policy and the SB3 feature extractor; one :class:`ObservationInput` base turns
env-layout observations into network input for every model that reads them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

ArrayLike = np.ndarray | torch.Tensor


def conv_block(c_in: int, c_out: int, stride: int, norm: bool = True) -> nn.Sequential:
    """Conv (4x4 at stride 2, else 3x3) -> GroupNorm(1) (unless ``norm=False``) -> GELU."""
    kernel = 4 if stride == 2 else 3
    layers = [nn.Conv2d(c_in, c_out, kernel, stride, 1), nn.GroupNorm(1, c_out), nn.GELU()]
    return nn.Sequential(*(layers if norm else [layers[0], layers[2]]))


def mlp(dims: Sequence[int], final_activation: bool = False) -> nn.Sequential:
    """Linear layers through ``dims`` with GELU between them (and after the last one if asked)."""
    layers: list[nn.Module] = []
    for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(d_in, d_out))
        if i < len(dims) - 2 or final_activation:
            layers.append(nn.GELU())
    return nn.Sequential(*layers)


class ConvEncoder(nn.Module):
    """Frames ``[B, C, H, W]`` -> ``[B, out_dim]``.

    One stride-2 :func:`conv_block` per entry of ``channels``, a 4x4 average pool (so any frame
    size works), then ``Linear -> GELU -> Linear`` when ``hidden`` is given (raw outputs, e.g.
    slot values) or ``Linear -> GELU`` when it is not (features). ``norm=False`` drops the
    per-frame GroupNorm (measured better for the few-label translator, see ``Translator``).
    """

    def __init__(self, in_channels: int, channels: Sequence[int], out_dim: int, hidden: int | None = None,
                 norm: bool = True):
        super().__init__()
        layers, c_prev = [], in_channels
        for width in channels:
            layers.append(conv_block(c_prev, width, stride=2, norm=norm))
            c_prev = width
        self.convs = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(4))
        dims = [c_prev * 16, hidden, out_dim] if hidden else [c_prev * 16, out_dim]
        self.head = nn.Sequential(nn.Flatten(), *mlp(dims, final_activation=not hidden))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.convs(x))


def feature_encoder(obs_shape: Sequence[int], channels: Sequence[int], out_dim: int, norm: bool = True) -> nn.Module:
    """o_t -> ``[B, out_dim]`` features: a :class:`ConvEncoder` for images, a 2-layer MLP for vectors."""
    if len(obs_shape) == 3:
        return ConvEncoder(obs_shape[2], channels, out_dim, norm=norm)
    return mlp([obs_shape[0], out_dim, out_dim], final_activation=True)


class ObservationInput(nn.Module):
    """Base for models that read env observations (uint8 ``[B, H, W, C]`` or float ``[B, D]``).

    Images become ``[B, C, H, W]`` in [0, 1]; vectors are standardized with ``obs_mean`` /
    ``obs_std`` (buffers, saved with the weights; set from data or copied from a LAM).
    """

    obs_mean: torch.Tensor
    obs_std: torch.Tensor

    def _init_obs_input(self, obs_shape: Sequence[int]) -> None:
        self._obs_is_image = len(obs_shape) == 3
        dim = 1 if self._obs_is_image else int(obs_shape[0])
        self.register_buffer("obs_mean", torch.zeros(dim))
        self.register_buffer("obs_std", torch.ones(dim))

    def set_obs_stats(self, mean: ArrayLike, std: ArrayLike) -> None:
        """Standardization for vector observations (ignored for images)."""
        if self._obs_is_image:
            return
        self.obs_mean.copy_(torch.as_tensor(np.asarray(mean), dtype=torch.float32).reshape(-1))
        self.obs_std.copy_(torch.as_tensor(np.asarray(std), dtype=torch.float32).reshape(-1).clamp_min(1e-6))

    def copy_obs_stats(self, other: ObservationInput) -> None:
        """Read observations exactly as ``other`` (a LAM) does."""
        self.set_obs_stats(other.obs_mean.cpu(), other.obs_std.cpu())

    def obs_input(self, obs: ArrayLike) -> torch.Tensor:
        """Env-layout observations -> network input on this module's device."""
        x = torch.as_tensor(np.asarray(obs)) if not torch.is_tensor(obs) else obs
        x = x.to(self.obs_mean.device)
        if self._obs_is_image:
            return x.permute(0, 3, 1, 2).float() / 255.0
        return (x.float() - self.obs_mean) / self.obs_std
