"""Network pieces: the conv encoder, MLPs, reading env observations, and the LAM's IDM and FDM.

One conv encoder serves the LAM's IDM, the supervised IDM, the translator's o_t feature, the
latent BC policy and the SB3 feature extractor; one :class:`ObservationInput` base turns
env-layout observations into network input for every model that reads them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ArrayLike = np.ndarray | torch.Tensor


DOWNSAMPLES = ("stride", "maxpool")


def conv_block(c_in: int, c_out: int, stride: int, norm: bool = True) -> nn.Sequential:
    """Conv (4x4 at stride 2, else 3x3) -> GroupNorm(1) (unless ``norm=False``) -> GELU."""
    kernel = 4 if stride == 2 else 3
    layers = [nn.Conv2d(c_in, c_out, kernel, stride, 1), nn.GroupNorm(1, c_out), nn.GELU()]
    return nn.Sequential(*(layers if norm else [layers[0], layers[2]]))


def down_block(c_in: int, c_out: int, downsample: str = "stride", norm: bool = True) -> nn.Sequential:
    """One encoder stage that halves the frame: a stride-2 :func:`conv_block` (``"stride"``), or a 3x3 conv at
    full resolution then a 3x3 max-pool at stride 2 (``"maxpool"``, IMPALA's stem): a small object's strongest
    response survives the halving instead of being sampled past, at about 4x the stage's conv cost."""
    if downsample == "stride":
        return conv_block(c_in, c_out, stride=2, norm=norm)
    if downsample == "maxpool":
        return nn.Sequential(*conv_block(c_in, c_out, stride=1, norm=norm), nn.MaxPool2d(3, 2, 1))
    raise ValueError(f"downsample must be one of {DOWNSAMPLES}, got {downsample!r}.")


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

    One :func:`down_block` per entry of ``channels``, a 4x4 average pool (so any frame
    size works), then ``Linear -> GELU -> Linear`` when ``hidden`` is given (raw outputs, e.g.
    slot values) or ``Linear -> GELU`` when it is not (features). ``norm=False`` drops the
    per-frame GroupNorm (measured better for the few-label translator, see ``Translator``).
    """

    def __init__(self, in_channels: int, channels: Sequence[int], out_dim: int, hidden: int | None = None,
                 norm: bool = True, downsample: str = "stride"):
        super().__init__()
        layers, c_prev = [], in_channels
        for width in channels:
            layers.append(down_block(c_prev, width, downsample, norm=norm))
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


class ImageIDM(ConvEncoder):
    """(o_t, o_t+1) pixels -> ``[B, K, L]`` pre-quantization slot values (input: o_t, o_t+1 and their difference)."""

    def __init__(self, in_channels: int, channels: list[int], hidden: int, out_dim: int, downsample: str = "stride"):
        super().__init__(3 * in_channels, channels, out_dim, hidden=hidden, downsample=downsample)

    def forward(self, x: torch.Tensor, x_next: torch.Tensor) -> torch.Tensor:
        return super().forward(torch.cat([x, x_next, x_next - x], dim=1))


class FiLMResBlock(nn.Module):
    """Residual conv block whose features are scaled and shifted by the latent action."""

    def __init__(self, width: int, cond_dim: int):
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, 1, 1)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1)
        self.norm = nn.GroupNorm(1, width)
        self.film = nn.Linear(cond_dim, 2 * width)

    def forward(self, h: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(cond)[:, :, None, None].chunk(2, dim=1)
        y = F.gelu(self.conv1(h))
        y = self.norm(self.conv2(y)) * (1 + scale) + shift
        return h + F.gelu(y)


class ImageFDM(nn.Module):
    """U-Net on o_t, conditioned on the (null-filled) latent at the bottleneck; predicts a frame delta.

    ``newest_channels``: o_t is a stack of frames (oldest first) and only its newest frame is predicted; the
    rest of o_t+1's stack is o_t's newer frames, copied (they are known, not predicted).
    """

    def __init__(self, in_channels: int, channels: list[int], cond_dim: int, hidden: int, newest_channels: int | None = None,
                 latent_input: bool = False):
        super().__init__()
        self.newest = newest_channels
        self.cond = nn.Sequential(nn.Linear(cond_dim, hidden), nn.GELU(), nn.Linear(hidden, hidden))
        # latent_input: the latent also enters the first layer, tiled over the frame (as LAPO's world model does), so
        # every scale of the U-Net, skips included, can use it; otherwise it enters at the bottleneck only
        self.inject = nn.Linear(hidden, channels[0]) if latent_input else None
        self.down = nn.ModuleList()
        c_prev = in_channels + (channels[0] if latent_input else 0)
        for width in channels:
            self.down.append(conv_block(c_prev, width, stride=2))
            c_prev = width
        self.mid = nn.ModuleList([FiLMResBlock(c_prev, hidden), FiLMResBlock(c_prev, hidden)])
        self.up = nn.ModuleList()
        skips = [in_channels] + list(channels[:-1])
        for skip in reversed(skips):
            out = max(skip, channels[0])
            self.up.append(nn.Sequential(nn.Conv2d(c_prev + skip, out, 3, 1, 1), nn.GroupNorm(1, out), nn.GELU()))
            c_prev = out
        self.out = nn.Conv2d(c_prev, newest_channels or in_channels, 3, 1, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        """``x [B, C, H, W]`` and ``latent [B * m, K, D]``: unless the latent enters the first layer, the
        latent-free down path runs once per frame and is shared by the frame's m latents (multi-prefix updates)."""
        cond = self.cond(latent.flatten(1))
        repeats = latent.shape[0] // x.shape[0]
        if self.inject is not None and repeats > 1:
            x, repeats = x.repeat_interleave(repeats, 0), 1
        h = x
        if self.inject is not None:
            h = torch.cat([x, self.inject(cond)[:, :, None, None].expand(-1, -1, *x.shape[-2:])], dim=1)
        skips = []
        for block in self.down:
            skips.append(h if skips else x)  # the full-resolution skip is the frame itself
            h = block(h)
        if repeats > 1:
            x, h = x.repeat_interleave(repeats, 0), h.repeat_interleave(repeats, 0)
            skips = [skip.repeat_interleave(repeats, 0) for skip in skips]
        for block in self.mid:
            h = block(h, cond)
        for block, skip in zip(self.up, reversed(skips)):
            h = F.interpolate(h, size=skip.shape[-2:], mode="nearest")
            h = block(torch.cat([h, skip], dim=1))
        if self.newest:
            return torch.cat([x[:, self.newest :], x[:, -self.newest :] + self.out(h)], dim=1)
        return x + self.out(h)


class VectorIDM(nn.Module):
    def __init__(self, obs_dim: int, hidden: int, out_dim: int):
        super().__init__()
        self.net = mlp([3 * obs_dim, hidden, hidden, out_dim])

    def forward(self, x: torch.Tensor, x_next: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x, x_next, x_next - x], dim=-1))


class VectorFDM(nn.Module):
    def __init__(self, obs_dim: int, cond_dim: int, hidden: int):
        super().__init__()
        self.net = mlp([obs_dim + cond_dim, hidden, hidden, obs_dim])
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, x: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        """``x [B, D]`` and ``latent [B * m, K, D']`` (m latents per observation)."""
        x = x.repeat_interleave(latent.shape[0] // x.shape[0], 0)
        return x + self.net(torch.cat([x, latent.flatten(1)], dim=-1))
