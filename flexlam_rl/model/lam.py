"""FlexLAM: a latent action model whose latent action is a variable-length token prefix.

IDM (o_t, o_t+1) -> K slots -> FSQ tokens -> per-slot embeddings [B, K, D];
:func:`null_fill` keeps slots < k and puts the shared learned ``null_latent`` in the
rest; FDM (o_t, latent) -> o_t+1. Nested dropout samples k per example during
training. A fixed-capacity LAM is this class with ``nested_dropout=False``.

No I/O here: :meth:`FlexLAM.save` / :meth:`FlexLAM.load` delegate to ``checkpoint.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config import REMOVED_OPTIONS, LAMConfig
from ..errors import FlexLAMError
from .budgets import adaptive_lengths, check_prefix_len, check_prefix_lens, check_tol, prefix_weights, stratified_prefix_lens
from .nets import ArrayLike, ImageFDM, ImageIDM, ObservationInput, VectorFDM, VectorIDM
from .quantize import FSQ, CodeNorm

CHANGE_DILATE = 3  # the change-weighted loss counts a 3x3 neighbourhood of each changed pixel
CHANGED = 8 / 255  # a pixel has changed when a channel moves by more than this (frames in [0, 1])


def changed_pixels(x: torch.Tensor, x_next: torch.Tensor, dilate: int = 1) -> torch.Tensor:
    """Where o_t and o_t+1 differ: ``[B, 1, H, W]`` of 0/1 for frames (a pixel counts when any channel moves
    by more than ``CHANGED``; ``dilate`` > 1 widens each changed pixel to a ``dilate`` square, so a small object's
    neighbourhood counts too), ``[B, D]`` for vectors (any change)."""
    diff = (x_next - x).abs()
    if diff.ndim != 4:
        return (diff > 1e-6).float()
    mask = (diff.amax(1, keepdim=True) > CHANGED).float()
    return F.max_pool2d(mask, dilate, stride=1, padding=dilate // 2) if dilate > 1 else mask


def frame_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None, change_weight: float) -> torch.Tensor:
    """Whole-frame MSE, plus ``change_weight`` x the MSE on the pixels that change (``mask``).

    On a game screen that is 98% static, the action's pixels (a paddle, a sprite) are a few in a thousand of
    the whole-frame mean, and a decoder fits that mean without the latent action: the code collapses. The
    second term weighs the changed pixels as a whole, however few they are.
    """
    loss = F.mse_loss(pred, target)
    if change_weight > 0 and mask is not None:
        err = (pred - target) ** 2
        weights = mask.expand_as(err)
        loss = loss + change_weight * (err * weights).sum() / weights.sum().clamp_min(1.0)
    return loss


# bytes of the widest activation one no-grad call may make: glibc serves blocks over its 32 MB mmap ceiling from fresh
# mappings that the kernel zero-fills on every call (benchmarks/results/eval_memory: a games LAM's held-out check)
EVAL_ACTIVATION_BYTES = 16 * 2**20
def null_fill(latent: torch.Tensor, prefix_len: torch.Tensor | int, null_latent: torch.Tensor) -> torch.Tensor:
    """Keep slots ``< prefix_len`` and replace the rest with ``null_latent``.

    ``latent [B, K, D]``, ``prefix_len`` an int or ``[B]`` in 0..K, ``null_latent [D]``
    -> ``[B, K, D]``. The one place the budget is applied: pretraining, alignment,
    wrappers and evaluation all call it.
    """
    batch, num_slots, _ = latent.shape
    if not torch.is_tensor(prefix_len):
        prefix_len = torch.full((batch,), int(prefix_len), device=latent.device)
    keep = torch.arange(num_slots, device=latent.device)[None, :] < prefix_len.to(latent.device)[:, None]
    return torch.where(keep[..., None], latent, null_latent.to(latent.dtype).expand_as(latent))


@dataclass
class LAMOutput:
    """One training forward pass, in normalized observation space."""

    pred: torch.Tensor  # predicted o_t+1, [B, C, H, W] or [B, D]
    target: torch.Tensor  # true o_t+1, same shape
    tokens: torch.Tensor  # [B, K] int64
    prefix_len: torch.Tensor  # [B] in 1..K
    loss: torch.Tensor  # scalar: MSE (+ change_weight x the MSE on changed pixels, see frame_loss)


class FlexLAM(ObservationInput):
    """Latent action model with a variable-length discrete latent action.

    Public surface (observations in the env's own layout, numpy or torch):
    ``encode(obs, next_obs) -> tokens [B, K]``, ``embed(tokens, prefix_len=k) -> [B, K, D]``,
    ``decode(obs, latent) -> next obs``, ``save(dir)``, ``FlexLAM.load(dir)``.
    """

    def __init__(self, config: LAMConfig):
        super().__init__()
        self.config = config
        levels = config.fsq_levels
        self.quantizer = FSQ(levels)
        self.code_norm = CodeNorm((config.num_tokens, len(levels))) if config.code_norm else None
        slot_out = config.num_tokens * len(levels)
        cond_dim = config.num_tokens * config.latent_dim
        if config.is_image:
            in_ch = config.obs_shape[2]
            self.idm = ImageIDM(in_ch, config.channels, config.hidden_dim, slot_out, config.idm_downsample)
            self.fdm = ImageFDM(in_ch, config.channels, cond_dim, config.hidden_dim,
                                newest_channels=config.frame_channels if config.predict_newest else None,
                                latent_input=config.fdm_latent_input)
        else:
            dim = config.obs_shape[0]
            self.idm = VectorIDM(dim, config.hidden_dim, slot_out)
            self.fdm = VectorFDM(dim, cond_dim, config.hidden_dim)
        self.token_proj = nn.Linear(len(levels), config.latent_dim)
        self.slot_embed = nn.Parameter(torch.randn(config.num_tokens, config.latent_dim) * 0.02)
        self.null_latent = nn.Parameter(torch.randn(config.latent_dim) / config.latent_dim**0.5)
        self._init_obs_input(config.obs_shape)  # vectors: standardized with dataset statistics (set before training)

    # ----------------------------------------------------------------- sizes
    @property
    def num_tokens(self) -> int:
        """K: the most tokens a latent action can hold."""
        return self.config.num_tokens

    @property
    def codebook_size(self) -> int:
        """V: codes per token."""
        return self.quantizer.codebook_size

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def device(self) -> torch.device:
        return self.null_latent.device

    # -------------------------------------------------------- normalization
    def normalize(self, obs: ArrayLike, name: str = "obs") -> torch.Tensor:
        """Env-layout observations -> network input: ``[B, C, H, W]`` in [0, 1] or standardized ``[B, D]``."""
        return self.obs_input(self._as_batch(obs, name))

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`normalize`: images come back as uint8 ``[B, H, W, C]``."""
        if self.config.is_image:
            return (x.clamp(0, 1) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1)
        return x * self.obs_std + self.obs_mean

    def _as_batch(self, obs: ArrayLike, name: str) -> torch.Tensor:
        expected = tuple(self.config.obs_shape)
        x = torch.as_tensor(obs) if not torch.is_tensor(obs) else obs
        if tuple(x.shape) == expected:
            raise FlexLAMError(
                f"{name} has shape {tuple(x.shape)}: a single observation. Add a batch "
                f"dimension (obs[None]) to get [B, {', '.join(map(str, expected))}]."
            )
        if x.ndim != len(expected) + 1 or tuple(x.shape[1:]) != expected:
            raise FlexLAMError(
                f"{name} has shape {tuple(x.shape)}, but this LAM expects [B, {', '.join(map(str, expected))}] "
                f"({'uint8 images' if self.config.is_image else 'float vectors'}, preprocessing "
                f"{self.config.preprocess}). Apply the same preprocessing (flexlam_rl.envs.apply_preprocess)."
            )
        if self.config.is_image and x.dtype != torch.uint8:
            raise FlexLAMError(f"{name} must be uint8 pixels (0..255), got dtype {x.dtype}.")
        if not self.config.is_image and not (x.dtype.is_floating_point or x.dtype in (torch.int32, torch.int64)):
            raise FlexLAMError(f"{name} must be a float vector, got dtype {x.dtype}.")
        return x.to(self.device)

    # ------------------------------------------------------------- internals
    def _tokenize(self, x: torch.Tensor, x_next: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalized inputs -> (slot embeddings with straight-through gradient [B, K, D], tokens [B, K])."""
        codes, tokens = self.quantizer(self._encoder_values(x, x_next))
        return self.token_proj(codes) + self.slot_embed, tokens

    def _encoder_values(self, x: torch.Tensor, x_next: torch.Tensor) -> torch.Tensor:
        z = self.idm(x, x_next).view(x.shape[0], self.num_tokens, self.quantizer.dim)
        return self.code_norm(z) if self.code_norm is not None else z

    def forward(
        self, obs: ArrayLike, next_obs: ArrayLike, prefix_len: torch.Tensor | int | None = None,
        generator: torch.Generator | None = None, prefix_samples: int = 1,
    ) -> LAMOutput:
        """Training pass. ``prefix_len=None`` draws it (:meth:`draw_prefix_lens`); an int or ``[B]`` tensor
        sets one length per example, a ``[B, m]`` tensor m lengths per example.

        With m lengths per example (``prefix_samples=m > 1`` under nested dropout) every example is
        decoded at each of them from one encoder pass: the same loss, averaged over more prefixes
        per update (the output's ``prefix_len`` is then ``[B * m]``).
        """
        x, x_next = self.normalize(obs), self.normalize(next_obs, "next_obs")
        slots, tokens = self._tokenize(x, x_next)
        weight = self.config.change_weight
        mask = changed_pixels(x, x_next, CHANGE_DILATE) if weight > 0 and self.config.is_image else None
        if prefix_len is None:
            prefix_len = self.draw_prefix_lens(x.shape[0], prefix_samples, generator)
        elif not torch.is_tensor(prefix_len):
            prefix_len = torch.full((x.shape[0],), int(prefix_len), device=x.device)
        if prefix_len.ndim == 2:
            samples = prefix_len.shape[1]
            slots, x_next = slots.repeat_interleave(samples, 0), x_next.repeat_interleave(samples, 0)
            mask = mask.repeat_interleave(samples, 0) if mask is not None else None
            prefix_len = prefix_len.flatten()
        latent = null_fill(slots, prefix_len.to(self.device), self.null_latent)
        pred = self.fdm(x, latent)
        loss = frame_loss(pred, x_next, mask, weight)
        return LAMOutput(pred, x_next, tokens, prefix_len, loss)

    def draw_prefix_lens(self, batch: int, samples: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
        """The prefix lengths training uses: ``[B]``, or ``[B, samples]`` drawn one from each of ``samples``
        equal-probability strata of the prefix distribution (nested dropout only; a fixed LAM uses K)."""
        if samples > 1 and self.config.nested_dropout:
            weights = prefix_weights(self.num_tokens, self.config.prefix_dist, self.config.geometric_p)
            return stratified_prefix_lens(weights, batch, samples, generator).to(self.device)
        return self.sample_prefix_len(batch, generator)

    def sample_prefix_len(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Nested dropout: ``[B]`` prefix lengths in 1..K (all K when it is off)."""
        if not self.config.nested_dropout:
            return torch.full((batch,), self.num_tokens, dtype=torch.long, device=self.device)
        weights = prefix_weights(self.num_tokens, self.config.prefix_dist, self.config.geometric_p)
        draws = torch.multinomial(weights, batch, replacement=True, generator=generator)
        return (draws + 1).to(self.device)

    # ----------------------------------------------------------- public API
    @torch.no_grad()
    def encode(self, obs: ArrayLike, next_obs: ArrayLike) -> torch.Tensor:
        """Transitions -> tokens ``[B, K]`` int64 (the full code; truncate with ``embed``)."""
        x, x_next = self.normalize(obs), self.normalize(next_obs, "next_obs")
        _, tokens = self._tokenize(x, x_next)
        return tokens

    def latent_slots(self, obs: ArrayLike, next_obs: ArrayLike) -> torch.Tensor:
        """Transitions -> per-slot embeddings ``[B, K, D]`` of their full code, with gradient (straight through the
        rounding): what a loss on the latent (the action head of :mod:`flexlam_rl.pretrain.supervision`) trains the IDM by."""
        x, x_next = self.normalize(obs), self.normalize(next_obs, "next_obs")
        return self._tokenize(x, x_next)[0]

    @torch.no_grad()
    def encode_values(self, obs: ArrayLike, next_obs: ArrayLike) -> torch.Tensor:
        """Transitions -> each slot's value before rounding, on the code grid's scale ``[B, K, L]``: rounding it
        gives :meth:`encode`'s tokens. What a policy that regresses the latent (LAPO's latent BC) learns."""
        x, x_next = self.normalize(obs), self.normalize(next_obs, "next_obs")
        return self.quantizer._bound(self._encoder_values(x, x_next))

    def embed_codes(self, codes: torch.Tensor, prefix_len: int | torch.Tensor) -> torch.Tensor:
        """Codes in [-1, 1] ``[B, K, L]`` (rounded or not) -> the null-filled latent ``[B, K, D]``, differentiably:
        :meth:`embed` for token indices, and the path a fine-tuned policy's gradient takes through this LAM."""
        slots = self.token_proj(codes.to(self.device, torch.float32)) + self.slot_embed
        return null_fill(slots, prefix_len, self.null_latent)

    def eval_rows(self, per_row: int = 1) -> int:
        """Transitions per no-grad call when each is decoded ``per_row`` times (1: encoding), so that the widest
        activation, a full-resolution conv stage with its skip, stays under ``EVAL_ACTIVATION_BYTES``; vectors: 256
        frames per call."""
        if not self.config.is_image:
            return max(1, 256 // per_row)
        return max(1, EVAL_ACTIVATION_BYTES // (self._eval_frame_bytes() * per_row))

    def _eval_frame_bytes(self) -> int:
        """fp32 bytes one decoded frame takes in the widest stage: the first conv's channels plus o_t and o_t+1."""
        h, w, c = self.config.obs_shape
        return 4 * h * w * (self.config.channels[0] + 2 * c)

    @torch.no_grad()
    def encode_many(self, obs: ArrayLike, next_obs: ArrayLike, batch_size: int | None = None) -> torch.Tensor:
        """Any number of transitions -> tokens ``[N, K]`` on the CPU, encoded ``batch_size`` (default
        :meth:`eval_rows`) at a time (the one batched encoding every probe, translator fit, label strategy and BC
        target uses)."""
        batch_size = batch_size or self.eval_rows()
        n = len(obs)
        if len(next_obs) != n:
            raise FlexLAMError(f"obs and next_obs differ in length ({n} vs {len(next_obs)}).")
        parts = [self.encode(obs[i : i + batch_size], next_obs[i : i + batch_size]).cpu() for i in range(0, n, batch_size)]
        return torch.cat(parts) if parts else torch.zeros(0, self.num_tokens, dtype=torch.int64)

    @torch.no_grad()
    def encode_set(self, data: Any, indices: Sequence[int] | None = None, batch_size: int | None = None) -> torch.Tensor:
        """A :class:`~flexlam_rl.data.transitions.TransitionSet`'s transitions (``indices``, default all) -> tokens ``[N, K]`` on
        the CPU, read from the set a batch at a time (a large pixel pool is never held in memory whole)."""
        from ..data.transitions import eval_batches

        batch_size = batch_size or self.eval_rows()
        parts = [self.encode(b["obs"], b["next_obs"]).cpu() for b in eval_batches(data, batch_size, indices=indices)]
        return torch.cat(parts) if parts else torch.zeros(0, self.num_tokens, dtype=torch.int64)

    @torch.no_grad()
    def errors_by_length(self, obs: ArrayLike, next_obs: ArrayLike, lengths: Sequence[int] | None = None) -> torch.Tensor:
        """Per-transition next-frame MSE (normalized space) at each prefix length: ``[B, len(lengths)]``.

        ``lengths`` default to 1..K; 0 is the all-null code. One encoder pass; the decoder runs over
        every (transition, length) pair in one batch.
        """
        lengths = torch.arange(1, self.num_tokens + 1) if lengths is None else torch.as_tensor(list(lengths))
        if lengths.numel() == 0 or int(lengths.min()) < 0 or int(lengths.max()) > self.num_tokens:
            raise FlexLAMError(f"lengths must be in 0..{self.num_tokens} (K = num_tokens), got {lengths.tolist()}.")
        x, x_next = self.normalize(obs), self.normalize(next_obs, "next_obs")
        return self._errors_by_length(x, x_next, lengths.to(self.device))[0]

    def _errors_by_length(self, x: torch.Tensor, x_next: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalized inputs -> (per-transition MSE ``[n, L]``, tokens ``[n, K]``); the evaluation's inner loop."""
        slots, tokens = self._tokenize(x, x_next)
        n = x.shape[0]
        latent = null_fill(slots.repeat_interleave(len(lengths), 0), lengths.repeat(n), self.null_latent)
        pred = self.fdm(x, latent).view(n, len(lengths), *x.shape[1:])
        return ((pred - x_next[:, None]) ** 2).flatten(2).mean(-1), tokens

    @torch.no_grad()
    def adaptive_prefix_len(self, obs: ArrayLike, next_obs: ArrayLike, tol: float = 0.1) -> torch.Tensor:
        """The shortest code that is nearly as good as the full one, per transition: int64 ``[B]`` in 1..K.

        Rule: with e_k the transition's next-frame MSE (normalized space) when decoded from its first
        k tokens, the length is the smallest k with ``e_k <= (1 + tol) * e_K``. k = K always
        qualifies, and a larger ``tol`` only loosens the test, so it never gives a longer code.
        ``tol = 0`` asks for the full code's error exactly (ties at shorter k still win).
        """
        check_tol(tol)
        was_training = self.training
        self.eval()
        errors = self.errors_by_length(obs, next_obs)  # [B, K]
        self.train(was_training)
        return adaptive_lengths(errors, tol)

    def embed(self, tokens: ArrayLike, prefix_len: int | ArrayLike) -> torch.Tensor:
        """Tokens ``[B, K]`` (or ``[B, k]``) -> null-filled latent ``[B, K, D]``; slots >= k hold the null latent.

        ``prefix_len`` is one k for the batch or one per row (``[B]``, each in 1..K; tokens ``[B, K]``).
        """
        if isinstance(prefix_len, (list, np.ndarray)) or (torch.is_tensor(prefix_len) and prefix_len.ndim == 1):
            lengths = check_prefix_lens(prefix_len, self.num_tokens)
            k = int(lengths.max()) if len(lengths) else 1  # the tokens must cover the longest row
        else:
            lengths, k = None, check_prefix_len(prefix_len, self.num_tokens)
        t = torch.as_tensor(np.asarray(tokens)) if not torch.is_tensor(tokens) else tokens
        if t.ndim != 2 or not k <= t.shape[1] <= self.num_tokens:
            raise FlexLAMError(
                f"tokens must be [B, n] with prefix_len={k} <= n <= K={self.num_tokens}, got shape {tuple(t.shape)}."
            )
        if t.dtype.is_floating_point or t.dtype == torch.bool:
            raise FlexLAMError(f"tokens must be integers, got dtype {t.dtype}.")
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= self.codebook_size):
            raise FlexLAMError(f"tokens must be in 0..{self.codebook_size - 1} (codebook_size), got {int(t.min())}..{int(t.max())}.")
        t = t.to(self.device).long()
        if t.shape[1] < self.num_tokens:  # pad: those slots are nulled anyway
            t = F.pad(t, (0, self.num_tokens - t.shape[1]))
        if lengths is not None and len(lengths) != t.shape[0]:
            raise FlexLAMError(f"prefix_len has {len(lengths)} lengths for {t.shape[0]} rows of tokens; give one per row.")
        return self.embed_codes(self.quantizer.indices_to_codes(t), k if lengths is None else lengths.to(self.device))

    def decode(self, obs: ArrayLike, latent: torch.Tensor) -> torch.Tensor:
        """Predict the next observation from ``obs`` and a latent ``[B, K, D]``, in ``obs``'s layout."""
        x = self.normalize(obs)
        expected = (x.shape[0], self.num_tokens, self.latent_dim)
        if not torch.is_tensor(latent) or tuple(latent.shape) != expected:
            got = tuple(latent.shape) if hasattr(latent, "shape") else type(latent).__name__
            raise FlexLAMError(f"latent must be a tensor of shape {expected} (from lam.embed), got {got}.")
        return self.denormalize(self.fdm(x, latent.to(self.device, torch.float32)))

    def fingerprint(self) -> str:
        """A short hash of this LAM's config and weights: what a translator or policy made for it records, so that
        one made for another LAM (same K, same action space) is refused rather than silently wrong."""
        from ..checkpoint import weights_digest

        return weights_digest(self, {**REMOVED_OPTIONS, **self.config.to_dict()})

    def save(self, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
        """Write ``model.safetensors`` + ``config.json`` into the directory ``path`` (atomically)."""
        from ..checkpoint import save_module

        return save_module(self, path, kind="lam", config=self.config.to_dict(), extra=extra)

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> FlexLAM:
        """Rebuild a LAM from a directory written by :meth:`save`; validates before building anything."""
        from ..checkpoint import load_module

        return load_module(path, kind="lam", build=lambda cfg: cls(LAMConfig.from_dict(cfg)), device=device)
