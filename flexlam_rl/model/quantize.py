"""Finite scalar quantization (FSQ, Mentzer et al. 2023): one discrete token per slot.

Why FSQ rather than VQ-EMA: the "codebook" is a fixed grid, so there is nothing to
collapse or reset, no commitment loss and no EMA state; the only failure left is a slot
whose encoder output stops varying, which :func:`code_usage` measures per slot.
FlexTok uses the same quantizer for its flexible-length 1D tokens.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn


class FSQ(nn.Module):
    """Quantize each slot's ``L = len(levels)`` channels to a grid; ``codebook_size = prod(levels)``.

    Shapes: ``z [..., L]`` (continuous) -> ``codes [..., L]`` in [-1, 1] and ``indices [...]``
    in ``0..codebook_size-1``. Gradients pass straight through the rounding.
    """

    def __init__(self, levels: Sequence[int]):
        super().__init__()
        levels = [int(v) for v in levels]
        if not levels or any(v < 2 for v in levels):
            raise ValueError(f"FSQ levels must be a non-empty list of integers >= 2, got {levels}.")
        self.levels = levels
        level_t = torch.tensor(levels, dtype=torch.float32)
        basis = torch.tensor([math.prod(levels[:i]) for i in range(len(levels))], dtype=torch.long)
        self.register_buffer("_levels", level_t, persistent=False)
        self.register_buffer("_basis", basis, persistent=False)
        self.register_buffer("_half_width", torch.floor(level_t / 2), persistent=False)

    @property
    def dim(self) -> int:
        return len(self.levels)

    @property
    def codebook_size(self) -> int:
        return math.prod(self.levels)

    def _bound(self, z: torch.Tensor) -> torch.Tensor:
        """Squash to about (-L/2, L/2), even levels offset by 0.5, so rounding hits exactly L values.

        ``half_l`` is stretched by ``1 + eps`` (as in the FSQ paper's code): the shift that maps
        z = 0 to 0 is ``atanh(offset / half_l)``, which needs ``offset < half_l`` (L = 2 included).
        """
        eps = 1e-3
        half_l = (self._levels - 1) * (1 + eps) / 2
        offset = torch.where(self._levels % 2 == 0, 0.5, 0.0)
        shift = torch.atanh(offset / half_l)
        return torch.tanh(z + shift) * half_l - offset

    def snap(self, values: torch.Tensor) -> torch.Tensor:
        """Values on the grid's scale (what :meth:`_bound` gives, or a regression of it) ``[..., L]`` -> the nearest
        codes in [-1, 1], with the gradient passed straight through the rounding (as :meth:`forward` does)."""
        grid = values.clamp(-self._half_width, self._levels - 1 - self._half_width)
        return (grid + (torch.round(grid) - grid).detach()) / self._half_width

    def values_to_indices(self, values: torch.Tensor) -> torch.Tensor:
        """The nearest codes' indices ``[...]``: how a policy that regresses the value before quantization picks its tokens."""
        return self.codes_to_indices(self.snap(values))

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        bounded = self._bound(z)
        rounded = bounded + (torch.round(bounded) - bounded).detach()
        codes = rounded / self._half_width
        return codes, self.codes_to_indices(codes)

    def codes_to_indices(self, codes: torch.Tensor) -> torch.Tensor:
        digits = torch.round(codes * self._half_width + self._half_width).long()
        return (digits * self._basis).sum(dim=-1)

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        digits = (indices.unsqueeze(-1) // self._basis) % self._levels.long()
        return (digits.float() - self._half_width) / self._half_width


def code_usage(indices: torch.Tensor, codebook_size: int) -> torch.Tensor:
    """Per-slot perplexity ``exp(H)`` of token usage: ``indices [N, K] -> [K]``.

    1.0 means the slot emits a single code (collapsed); ``codebook_size`` means uniform use.
    Counted with one ``bincount`` over ``K * V`` bins: memory is O(N K + K V), never a one-hot.
    """
    indices = indices.long()
    num_slots = indices.shape[1]
    offsets = torch.arange(num_slots, device=indices.device) * codebook_size
    counts = torch.bincount((indices + offsets).flatten(), minlength=num_slots * codebook_size)
    probs = counts.view(num_slots, codebook_size).double() / max(1, indices.shape[0])
    entropy = -(probs * torch.log(probs.clamp_min(1e-12))).sum(dim=-1)
    return torch.exp(entropy).float()


class CodeNorm(nn.Module):
    """Standardize each slot's encoder values over the batch (batch normalization without scale or shift), so
    FSQ's bins see values of unit spread centred on 0.

    Why: on a game screen that is ~98% static a freshly initialized conv encoder maps every transition to
    nearly the same values (Pong and Breakout, 64x64: spread over transitions ~0.003 against FSQ bins ~0.3
    wide; ``benchmarks/results/games_recipe/trace.md``), so every slot emits one code; the decoder then pushes every
    transition's values the same way, and on Pong they drift past the tanh bound where no gradient reaches
    them. Training passes standardize with the batch's own mean and spread, gradient included, which removes
    exactly that shared push (running statistics alone do not: the mean outruns them); no loss term competes
    with the reconstruction (the spread penalty, a loss, outweighed it on Breakout).

    Every other pass (encoding, held-out checks: no gradient, or eval mode, or one transition) uses the running
    statistics, buffers saved with the weights and broadcast by DDP: encoding is deterministic and does not
    depend on the batch.
    """

    def __init__(self, shape: Sequence[int], momentum: float = 0.05, eps: float = 1e-8):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.register_buffer("running_mean", torch.zeros(*shape))
        self.register_buffer("running_var", torch.ones(*shape))
        self.register_buffer("batches_seen", torch.zeros((), dtype=torch.long))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``z [B, *shape]`` -> standardized values, same shape."""
        if not (self.training and torch.is_grad_enabled() and z.shape[0] > 1):
            return (z - self.running_mean) / torch.sqrt(self.running_var + self.eps)
        mean, var = z.mean(0), z.var(0, unbiased=False)
        with torch.no_grad():  # the first batch sets the statistics; read on the device (no host sync per update)
            rate = torch.where(self.batches_seen == 0, 1.0, self.momentum).to(z.dtype)
            self.running_mean.lerp_(mean.detach(), rate)
            self.running_var.lerp_(var.detach() * z.shape[0] / (z.shape[0] - 1), rate)
            self.batches_seen += 1
        return (z - mean) / torch.sqrt(var + self.eps)
