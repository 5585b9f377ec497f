"""Held-out evaluation of a LAM across token budgets from one set of weights.

Errors are mean squared errors in the LAM's normalized space (pixels in [0, 1];
vectors standardized by the training statistics). Two references frame the curve:
``null`` (k = 0: every slot holds the null latent, i.e. no action information) and
``copy`` (predict o_t+1 = o_t: what a model that ignores the action could trivially do).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from ..data.transitions import TransitionSet, eval_batches
from ..errors import DataError, FlexLAMError
from ..model.lam import FlexLAM
from ..model.quantize import code_usage


@torch.no_grad()
def reconstruction_by_budget(
    lam: FlexLAM,
    data: TransitionSet,
    budgets: Sequence[int] | None = None,
    batch_size: int | None = None,
    limit: int | None = None,
    indices: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Held-out next-frame MSE per prefix length k (plus the all-null and copy references).

    On every transition of ``data``, its first ``limit``, or the ``indices`` given. Each frame is
    encoded once and decoded at every budget in one batch. Returns ``{"mse": {k: err}, "null": err,
    "copy": err, "code_usage": [K], "transitions": n}``.
    """
    budgets = list(budgets) if budgets is not None else list(range(1, lam.num_tokens + 1))
    for k in budgets:
        if not 1 <= int(k) <= lam.num_tokens:
            raise FlexLAMError(f"budget {k} is outside 1..{lam.num_tokens} (K = num_tokens).")
    if len(data) == 0:
        raise DataError("No held-out transitions to evaluate on; lower data.heldout_fraction's floor or add episodes.")
    was_training = lam.training
    lam.eval()
    lengths = torch.tensor([0, *budgets], device=lam.device)  # 0: the all-null reference
    # summed on the LAM's device and read once at the end: no host sync per batch
    sums = torch.zeros(len(lengths), dtype=torch.float64, device=lam.device)
    copy_sum, count, all_tokens = torch.zeros((), dtype=torch.float64, device=lam.device), 0, []
    rows = max(1, batch_size // len(lengths)) if batch_size else lam.eval_rows(len(lengths))
    for batch in eval_batches(data, rows, limit, indices):
        x, x_next = lam.normalize(batch["obs"]), lam.normalize(batch["next_obs"])
        errors, tokens = lam._errors_by_length(x, x_next, lengths)
        all_tokens.append(tokens)
        sums += errors.sum(0).double()
        copy_sum += F.mse_loss(x, x_next, reduction="sum").double() / x_next[0].numel()
        count += x.shape[0]
    sums = dict(zip([0, *budgets], (sums / count).cpu().tolist()))
    lam.train(was_training)
    return {
        "mse": {int(k): sums[k] for k in budgets},
        "null": sums[0],
        "copy": float(copy_sum) / count,
        "code_usage": code_usage(torch.cat(all_tokens).cpu(), lam.codebook_size).tolist(),
        "transitions": count,
    }
