"""Token budgets: which prefix lengths exist, how training draws them, and how a transition picks its own.

A budget (prefix length) k keeps the first k of a latent action's K tokens; :func:`flexlam_rl.model.lam.null_fill`
applies it. This module holds everything else about k: validation (one k, or one per row), the
prefix-length distributions nested dropout samples from, and the adaptive rule.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..errors import FlexLAMError


def prefix_weights(num_tokens: int, dist: str, geometric_p: float = 0.35) -> torch.Tensor:
    """Probability of each prefix length 1..K under the nested-dropout distribution: ``[K]``."""
    lengths = torch.arange(1, num_tokens + 1, dtype=torch.float64)
    if dist == "uniform":
        weights = torch.ones(num_tokens, dtype=torch.float64)
    elif dist == "pow2":  # FlexTok: uniform over powers of two (and K itself)
        is_pow2 = (lengths.long() & (lengths.long() - 1)) == 0
        weights = (is_pow2 | (lengths == num_tokens)).double()
    elif dist == "geometric":  # Rippel et al.: P(k) ~ p (1-p)^(k-1), truncated at K
        weights = geometric_p * (1 - geometric_p) ** (lengths - 1)
    else:
        raise FlexLAMError(f"Unknown prefix distribution {dist!r}; expected uniform, pow2 or geometric.")
    return (weights / weights.sum()).float()


def stratified_prefix_lens(weights: torch.Tensor, batch: int, samples: int,
                           generator: torch.Generator | None = None) -> torch.Tensor:
    """``[B, samples]`` prefix lengths in 1..K: per example, one draw from each of ``samples`` strata of
    equal probability under ``weights [K]`` (with ``samples = K`` and uniform weights, every length once)."""
    cdf = weights.double().cumsum(0)
    u = (torch.arange(samples, dtype=torch.float64) + torch.rand(batch, samples, generator=generator, dtype=torch.float64)) / samples
    return torch.searchsorted(cdf, u, right=True).clamp_max(len(weights) - 1) + 1


def check_tol(tol: Any) -> float:
    """An adaptive-length tolerance: a finite number >= 0, else a ``FlexLAMError`` (a ``ValueError``)."""
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not math.isfinite(tol) or tol < 0:
        raise FlexLAMError(f"tol must be a finite number >= 0 (a relative error tolerance, e.g. 0.1), got {tol!r}.")
    return float(tol)


def adaptive_lengths(errors: torch.Tensor, tol: float) -> torch.Tensor:
    """Per-row errors at k = 1..K ``[B, K]`` -> the smallest k with ``e_k <= (1 + tol) * e_K``: int64 ``[B]``
    (the rule of :meth:`FlexLAM.adaptive_prefix_len`, for errors already computed)."""
    ok = errors <= (1.0 + check_tol(tol)) * errors[:, -1:]
    return (ok.int().argmax(dim=1) + 1).long()  # argmax: the first qualifying k (k = K always does)


def check_prefix_lens(prefix_len: Any, num_tokens: int) -> torch.Tensor:
    """Validate one token budget per row: integers in 1..K -> int64 ``[B]``, else a ``FlexLAMError``."""
    lengths = torch.as_tensor(np.asarray(prefix_len.cpu() if torch.is_tensor(prefix_len) else prefix_len))
    if lengths.ndim != 1 or lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
        raise FlexLAMError(f"per-row prefix_len must be a 1-D integer array, got {tuple(lengths.shape)} {lengths.dtype}.")
    if lengths.numel() and (int(lengths.min()) < 1 or int(lengths.max()) > num_tokens):
        raise FlexLAMError(f"prefix_len must be in 1..{num_tokens} (K = num_tokens), got {int(lengths.min())}..{int(lengths.max())}.")
    return lengths.long()


def check_prefix_len(prefix_len: Any, num_tokens: int) -> int:
    """Validate a token budget: an integer in 1..K, else a ``FlexLAMError`` (a ``ValueError``) naming the range."""
    if isinstance(prefix_len, bool) or not isinstance(prefix_len, (int, np.integer)):
        if torch.is_tensor(prefix_len) and prefix_len.ndim == 0 and not prefix_len.dtype.is_floating_point:
            prefix_len = int(prefix_len)
        else:
            raise FlexLAMError(f"prefix_len must be an integer in 1..{num_tokens}, got {prefix_len!r}.")
    if not 1 <= int(prefix_len) <= num_tokens:
        raise FlexLAMError(f"prefix_len must be in 1..{num_tokens} (K = num_tokens), got {int(prefix_len)}.")
    return int(prefix_len)
