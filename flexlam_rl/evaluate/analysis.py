"""Rate-distortion of latent actions: tokens spent per transition against next-frame error.

Three ways to spend tokens, per task (the datasets of one env):

- **truncation**: every transition gets the same k (k = 1..K of one FlexLAM);
- **adaptive**: each transition gets :meth:`~flexlam_rl.model.lam.FlexLAM.adaptive_prefix_len`'s
  length, over a sweep of ``tol`` (mean tokens is then a fraction);
- **fixed**: separately trained fixed-capacity LAMs, one point each (tokens = their K).

Errors are the held-out next-frame MSE in the LAM's normalized space, the same number as
:func:`~flexlam_rl.evaluate.reconstruction.reconstruction_by_budget`. Histograms of the chosen length (per task,
and per true action where the actions are discrete) show where the tokens go.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.transitions import DataConfig, TransitionSet, eval_batches
from ..errors import DataError
from ..model.budgets import adaptive_lengths, check_tol
from ..model.lam import FlexLAM
from .reconstruction import reconstruction_by_budget

DEFAULT_TOLS = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
MINIGRID_ACTIONS = ("left", "right", "forward", "pickup", "drop", "toggle", "done")


def task_of(dataset_id: str) -> str:
    """``ns/<...>/<env>/<name>-vN`` -> ``<env>``: the datasets of one env form one task."""
    parts = dataset_id.split("/")
    return parts[-2] if len(parts) >= 2 else dataset_id


def tasks(data: TransitionSet) -> dict[str, list[str]]:
    """Task name -> the dataset ids of ``data`` that belong to it, in order."""
    out: dict[str, list[str]] = {}
    for source in data.sources:
        out.setdefault(task_of(source.source_id), []).append(source.source_id)
    return out


@torch.no_grad()
def length_errors(lam: FlexLAM, data: TransitionSet, limit: int | None = None,
                  batch_size: int = 256) -> tuple[torch.Tensor, np.ndarray | None]:
    """Every transition's MSE at k = 1..K ``[N, K]`` and its action (``None`` without actions)."""
    was_training = lam.training
    lam.eval()
    lengths = torch.arange(1, lam.num_tokens + 1, device=lam.device)
    errors, actions = [], []
    for batch in eval_batches(data, max(1, batch_size // lam.num_tokens), limit):
        x, x_next = lam.normalize(batch["obs"]), lam.normalize(batch["next_obs"])
        errors.append(lam._errors_by_length(x, x_next, lengths)[0].cpu())
        if "action" in batch:
            actions.append(np.asarray(batch["action"]))
    lam.train(was_training)
    return torch.cat(errors), (np.concatenate(actions) if actions else None)


def rate_distortion(
    lam: FlexLAM, data: TransitionSet, tols: Sequence[float] = DEFAULT_TOLS, hist_tol: float = 0.1,
    fixed: Mapping[str, FlexLAM] | None = None, limit: int | None = 4000,
) -> dict[str, Any]:
    """Per task: the truncation curve, the adaptive curve over ``tols``, the fixed LAMs' points, and
    histograms of the adaptive length at ``hist_tol`` (overall and per discrete true action).

    ``limit`` caps the transitions scored per task (the first ones of its held-out episodes).
    """
    tols = sorted(check_tol(t) for t in tols)
    check_tol(hist_tol)
    if len(data) == 0:
        raise DataError("No held-out transitions to analyze; lower data.heldout_fraction's floor or add episodes.")
    out: dict[str, Any] = {"num_tokens": lam.num_tokens, "tols": tols, "hist_tol": hist_tol, "tasks": {}}
    for task, ids in tasks(data).items():
        subset = data.subset_sources(ids)
        errors, actions = length_errors(lam, subset, limit)
        rows = torch.arange(len(errors))
        entry: dict[str, Any] = {
            "datasets": ids, "transitions": len(errors),
            "truncation": [{"k": k, "tokens": float(k), "mse": float(errors[:, k - 1].mean())} for k in range(1, lam.num_tokens + 1)],
            "adaptive": [],
        }
        for tol in tols:
            chosen = adaptive_lengths(errors, tol)
            entry["adaptive"].append({"tol": tol, "tokens": float(chosen.float().mean()),
                                      "mse": float(errors[rows, chosen - 1].mean())})
        chosen = adaptive_lengths(errors, hist_tol)
        entry["length_hist"] = np.bincount(chosen.numpy(), minlength=lam.num_tokens + 1)[1:].tolist()
        if actions is not None and actions.ndim == 1 and np.issubdtype(actions.dtype, np.integer):
            entry["length_hist_by_action"] = {
                _action_name(task, int(a)): np.bincount(chosen.numpy()[actions == a], minlength=lam.num_tokens + 1)[1:].tolist()
                for a in np.unique(actions)
            }
        entry["fixed"] = {name: {"tokens": float(model.num_tokens),
                                 "mse": reconstruction_by_budget(model, subset, [model.num_tokens], limit=limit)["mse"][model.num_tokens]}
                          for name, model in (fixed or {}).items()}
        out["tasks"][task] = entry
    return out


def _action_name(task: str, action: int) -> str:
    if task.startswith("minigrid") and 0 <= action < len(MINIGRID_ACTIONS):
        return MINIGRID_ACTIONS[action]
    return str(action)


def rate_distortion_figures(result: Mapping[str, Any], out_dir: str | Path, prefix: str = "rate_distortion") -> list[Path]:
    """``<prefix>.png`` (tokens vs MSE per task) and ``<prefix>_lengths.png`` (the chosen-length histograms)."""
    from ..media import pyplot

    plt = pyplot()

    from ..checkpoint import atomic_path

    out_dir = Path(out_dir)
    names = list(result["tasks"])
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.6), squeeze=False)
    for ax, task in zip(axes[0], names):
        entry = result["tasks"][task]
        trunc, adapt = entry["truncation"], entry["adaptive"]
        ax.plot([p["tokens"] for p in trunc], [p["mse"] for p in trunc], "o-", label="FlexLAM, every transition k tokens")
        ax.plot([p["tokens"] for p in adapt], [p["mse"] for p in adapt], "s-", label="FlexLAM, adaptive length (tol sweep)")
        for p in adapt[:: max(1, len(adapt) // 4)]:
            ax.annotate(f"{p['tol']:g}", (p["tokens"], p["mse"]), fontsize=7, textcoords="offset points", xytext=(3, 3))
        if entry["fixed"]:
            fixed = sorted(entry["fixed"].values(), key=lambda p: p["tokens"])
            ax.plot([p["tokens"] for p in fixed], [p["mse"] for p in fixed], "x", ms=9, mew=2, label="fixed LAMs (K = k)")
        ax.set_yscale("log")
        ax.set_xlabel("mean tokens per transition")
        ax.set_title(f"{task} ({entry['transitions']} held-out)")
    axes[0][0].set_ylabel("held-out next-frame MSE")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    paths = [out_dir / f"{prefix}.png"]
    with atomic_path(paths[0], suffix=".tmp.png") as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)

    with_actions = [t for t in names if "length_hist_by_action" in result["tasks"][t]]
    rows = 2 if with_actions else 1
    fig, axes = plt.subplots(rows, len(names), figsize=(4.2 * len(names), 3.2 * rows), squeeze=False)
    k = np.arange(1, result["num_tokens"] + 1)
    for col, task in enumerate(names):
        entry = result["tasks"][task]
        hist = np.asarray(entry["length_hist"], float)
        axes[0][col].bar(k, hist / hist.sum())
        axes[0][col].set_title(f"{task}: chosen length (tol {result['hist_tol']:g})", fontsize=9)
        axes[0][col].set_xlabel("tokens")
        axes[0][col].set_xticks(k)
        if rows == 2:
            ax = axes[1][col]
            by_action = entry.get("length_hist_by_action")
            if not by_action:
                ax.axis("off")
                continue
            table = np.asarray(list(by_action.values()), float)
            table = table / np.maximum(table.sum(1, keepdims=True), 1)
            ax.imshow(table, aspect="auto", cmap="viridis", vmin=0, vmax=1, extent=(0.5, len(k) + 0.5, len(table) - 0.5, -0.5))
            ax.set_yticks(range(len(by_action)), [f"{a} (n={int(sum(c))})" for a, c in by_action.items()], fontsize=7)
            ax.set_xticks(k)
            ax.set_xlabel("tokens (row: share of that action's transitions)")
    axes[0][0].set_ylabel("share of transitions")
    fig.tight_layout()
    paths.append(out_dir / f"{prefix}_lengths.png")
    with atomic_path(paths[1], suffix=".tmp.png") as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return paths


def run_rate_distortion(
    lam_dir: str | Path, out: str | Path, fixed_dirs: Sequence[str | Path] = (), data: DataConfig | None = None, *,
    tols: Sequence[float] = DEFAULT_TOLS, hist_tol: float = 0.1, limit: int | None = 4000, name: str = "rate_distortion",
) -> dict[str, Any]:
    """``flexlam-analyze rate-distortion`` as a library call: score the LAM at ``lam_dir`` (and the fixed
    LAMs at ``fixed_dirs``) on the held-out episodes of ``data`` (default: the LAM's own datasets, split as
    pretraining's default splits them), write ``<name>.json`` and the two figures into ``out``; returns the result."""
    from ..checkpoint import atomic_write_json
    from ..data.transitions import require_frames

    lam = FlexLAM.load(lam_dir)
    if data is None:
        own = list(getattr(lam, "extra", {}).get("datasets", []))
        if not own:
            raise DataError(f"The LAM at {lam_dir} does not record its datasets; pass data=DataConfig(datasets=[...]).")
        data = DataConfig(own)
    fixed = {}
    for path in fixed_dirs:
        model = FlexLAM.load(path)
        if tuple(model.config.obs_shape) != tuple(lam.config.obs_shape):
            raise DataError(f"The fixed LAM at {path} reads observations {model.config.obs_shape}, the LAM at {lam_dir} "
                            f"{lam.config.obs_shape}: compare LAMs trained on the same data.")
        fixed[f"fixed K={model.num_tokens} ({Path(path).parent.name})"] = model
    held = data.load().heldout
    require_frames(held, lam.config.obs_shape, f"the LAM at {lam_dir}")
    result = rate_distortion(lam, held, tols, hist_tol, fixed, limit)
    result.update({"lam": str(Path(lam_dir).resolve()), "fixed": [str(Path(p).resolve()) for p in fixed_dirs],
                   "heldout_fraction": data.heldout_fraction, "split_seed": data.split_seed, "limit": limit})
    out = Path(out)
    atomic_write_json(out / f"{name}.json", result)
    result["figures"] = [str(p) for p in rate_distortion_figures(result, out, name)]
    return result
