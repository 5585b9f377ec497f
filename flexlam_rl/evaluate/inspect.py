"""What a LAM learned: real vs predicted next frames per budget, and a run's summary (collapse: :mod:`flexlam_rl.evaluate.diagnosis`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..checkpoint import atomic_path, origin, read_json
from ..data.transitions import TransitionSet, require_frames
from ..media import rgb_frame, rgb_frames, write_gif
from ..model.lam import FlexLAM


@torch.no_grad()
def prediction_figure(lam: FlexLAM, data: TransitionSet, path: str | Path, budgets: Sequence[int] | None = None,
                      count: int = 4, seed: int = 0) -> Path | None:
    """A grid of held-out transitions: o_t, the real o_t+1, and the prediction at each budget (image LAMs only)."""
    if not lam.config.is_image or len(data) == 0:
        return None
    from ..media import pyplot

    plt = pyplot()

    budgets = list(budgets) if budgets is not None else sorted({1, 2, 4, lam.num_tokens} & set(range(1, lam.num_tokens + 1)))
    picks = np.sort(np.random.default_rng(seed).permutation(len(data))[: min(count, len(data))])
    batch = data.__getitems__(picks)
    tokens = lam.encode(batch["obs"], batch["next_obs"])
    preds = {k: lam.decode(batch["obs"], lam.embed(tokens, k)).cpu().numpy() for k in budgets}
    columns = [("o_t", batch["obs"]), ("real o_t+1", batch["next_obs"])] + [(f"k={k}", preds[k]) for k in budgets]
    fig, axes = plt.subplots(len(picks), len(columns), figsize=(1.6 * len(columns), 1.6 * len(picks)), squeeze=False)
    for row in range(len(picks)):
        for col, (title, frames) in enumerate(columns):
            frame = frames[row]
            ax = axes[row][col]
            ax.imshow(rgb_frame(frame))  # a stack of frames shows its newest one
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(title, fontsize=8)
    fig.tight_layout()
    with atomic_path(path, suffix=".tmp.png") as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return Path(path)


@torch.no_grad()
def code_strip(lam: FlexLAM, data: TransitionSet, path: str | Path, first_token: dict[int, Any] | None = None,
               names: Sequence[str] | None = None, count: int = 3, seed: int = 0) -> Path | None:
    """What each code of the first token does: for ``count`` held-out o_t (rows), the change the decoder predicts
    from that code alone (k = 1) against o_t, one column per code; brighter is more change. ``first_token`` (per code,
    the translator's action shares, :func:`translator_summary`) titles each column with the commonest action
    (``names``: the env's action names). Image LAMs only."""
    if not lam.config.is_image or len(data) == 0:
        return None
    from ..media import pyplot

    plt = pyplot()
    picks = np.sort(np.random.default_rng(seed).permutation(len(data))[: min(count, len(data))])
    obs = data.__getitems__(picks)["obs"]
    codes = list(range(lam.codebook_size))
    before = rgb_frames(obs).astype(np.float32)
    fig, axes = plt.subplots(len(picks), len(codes) + 1, figsize=(1.1 * (len(codes) + 1), 1.2 * len(picks)), squeeze=False)
    for col, code in enumerate(codes):
        tokens = torch.full((len(picks), lam.num_tokens), code, dtype=torch.long)
        change = np.abs(rgb_frames(lam.decode(obs, lam.embed(tokens, 1)).cpu().numpy()).astype(np.float32) - before).mean(-1)
        action = first_token.get(code) if first_token else None
        label = f"code {code}"
        if isinstance(action, dict) and action:
            best = max(action, key=action.get)
            label += f"\n{names[best] if names and best < len(names) else best} {action[best]:.0%}"
        for row in range(len(picks)):
            axes[row][col + 1].imshow(change[row], cmap="magma", vmin=0, vmax=max(float(change.max()), 1.0))
            if row == 0:
                axes[row][col + 1].set_title(label, fontsize=7)
    for row in range(len(picks)):
        axes[row][0].imshow(rgb_frame(obs[row]))
        if row == 0:
            axes[row][0].set_title("o_t", fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    with atomic_path(path, suffix=".tmp.png") as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return Path(path)


def prediction_gif(rows: Sequence[Sequence[tuple[FlexLAM, int]]], data: TransitionSet, path: str | Path,
                   steps: int = 48, scale: int = 2) -> Path | None:
    """One held-out episode as a GIF of :func:`prediction_frames` (None when there is nothing to draw)."""
    frames = prediction_frames(rows, data, steps)
    return write_gif(list(frames), path, scale=scale) if frames is not None else None


@torch.no_grad()
def prediction_frames(rows: Sequence[Sequence[tuple[FlexLAM, int]]], data: TransitionSet, steps: int = 48) -> np.ndarray | None:
    """Frames ``[T, H', W', 3]`` of a grid whose rows are ``rows`` (say FlexLAM, then the fixed LAMs) and whose
    columns are the real o_t+1 and, per cell ``(lam, k)``, that LAM's prediction at budget k (2-px white gaps).

    Predictions are one step each, from the real o_t and the transition's own tokens: errors never compound, so
    what a budget's code misses shows at the step it happens. The first ``steps`` transitions of ``data``'s first
    episode are drawn (image LAMs only; None when there is nothing to draw).
    """
    if len(data) == 0 or not rows or not all(lam.config.is_image for row in rows for lam, _ in row):
        return None
    for row in rows:
        for lam, _ in row:
            require_frames(data, lam.config.obs_shape, f"the LAM ({origin(lam)})")
    same = (data.source_index == data.source_index[0]) & (data.episode_index == data.episode_index[0])
    batch = data.__getitems__(np.nonzero(same)[0][:steps])
    real = rgb_frames(batch["next_obs"])
    tokens: dict[int, torch.Tensor] = {}  # one encoding per LAM, whatever budgets it is drawn at
    grid_rows = []
    for row in rows:
        cells = [real]
        for lam, k in row:
            if id(lam) not in tokens:
                tokens[id(lam)] = lam.encode(batch["obs"], batch["next_obs"])
            pred = lam.decode(batch["obs"], lam.embed(tokens[id(lam)], k)).cpu().numpy()
            cells.append(rgb_frames(np.clip(np.rint(pred), 0, 255).astype(np.uint8)))
        grid_rows.append(_hstack(cells))
    width = max(r.shape[2] for r in grid_rows)
    return _vstack([np.pad(r, ((0, 0), (0, 0), (0, width - r.shape[2]), (0, 0)), constant_values=255) for r in grid_rows])


def _hstack(cells: Sequence[np.ndarray], gap: int = 2) -> np.ndarray:
    sep = np.full((*cells[0].shape[:2], gap, 3), 255, np.uint8)
    return np.concatenate([part for cell in cells for part in (cell, sep)][:-1], axis=2)


def _vstack(rows: Sequence[np.ndarray], gap: int = 2) -> np.ndarray:
    sep = np.full((rows[0].shape[0], gap, *rows[0].shape[2:]), 255, np.uint8)
    return np.concatenate([part for row in rows for part in (row, sep)][:-1], axis=1)


def run_summary(run_dir: str | Path) -> dict[str, Any]:
    """A run directory at a glance: its config, how far it got, its data, and its code usage."""
    from ..pretrain.runs import latest_checkpoint, verify_checkpoint

    run_dir = Path(run_dir)
    record = read_json(run_dir / "run.json", "run record")
    ckpt = latest_checkpoint(run_dir)
    if ckpt is not None:
        verify_checkpoint(ckpt)  # a damaged checkpoint is refused before anything is reported
    state = read_json(ckpt / "state.json", "checkpoint state") if ckpt is not None else {}
    summary = {"run_dir": str(run_dir), "lam": record.get("lam"), "train": record.get("train"), "datasets": record.get("datasets"),
               "step": state.get("step"), "steps": record.get("steps"), "code_usage": state.get("code_usage"),
               "plateau": state.get("plateau"), "wall_time_s": state.get("wall_time_s"), "data": record.get("data")}
    if (run_dir / "metrics.json").is_file():  # the final held-out scores flexlam-pretrain printed
        metrics = read_json(run_dir / "metrics.json", "metrics")
        summary["heldout"], summary["controllability"] = metrics.get("heldout"), metrics.get("controllability")
    return summary


def translator_summary(run_dir: str | Path, data: TransitionSet | None = None, frames: int = 64,
                       lam: FlexLAM | None = None) -> dict[str, Any] | None:
    """The run's translator (``<run_dir>/translator``, where flexlam-align puts it) beside its LAM: the alignment's
    scores with what they are read against (``align_metrics.json``: majority rate, balanced accuracy, the IDMs), and,
    given ``data``, what the first token means: per code of slot 1 (k = 1), the actions the translator gives over
    ``frames`` held-out frames (Discrete: each action's share; Box: the mean action). None without a translator.
    ``lam``: the run's LAM when the caller has loaded it already."""
    from ..act.wrappers import check_translator_fits
    from ..align import Translator
    from ..pretrain.runs import RunLayout, default_translator_dir

    run_dir = Path(run_dir)
    layout = RunLayout(run_dir)
    where = default_translator_dir(layout.lam)
    if not (where / "model.safetensors").is_file():
        return None
    lam = lam if lam is not None else FlexLAM.load(layout.lam)
    translator = Translator.load(where)
    check_translator_fits(translator, lam)  # a translator of another LAM is refused, not described
    metrics = read_json(layout.align_metrics, "alignment metrics") if layout.align_metrics.is_file() else {}
    out: dict[str, Any] = {"alignment": {key: metrics[key] for key in (
        "metric", "by_budget", "balanced_by_budget", "majority_rate", "eval_classes", "supervised_idm", "supervised_idm_balanced",
        "idm_all_labels", "idm_all_labels_balanced", "labels", "eval_transitions") if key in metrics}}
    if data is not None and len(data):
        picks = np.linspace(0, len(data) - 1, min(frames, len(data))).astype(int)
        obs = torch.as_tensor(data.__getitems__(picks)["obs"])
        first: dict[int, Any] = {}
        with torch.no_grad():
            for code in range(lam.codebook_size):
                tokens = torch.full((len(picks), lam.num_tokens), code, dtype=torch.long)
                actions = translator.predict(lam.embed(tokens, 1), obs if translator.config.use_obs else None)
                if actions.ndim == 1:
                    values, counts = np.unique(actions, return_counts=True)
                    first[code] = {int(v): float(c) / len(actions) for v, c in zip(values, counts)}
                else:
                    first[code] = [float(v) for v in actions.mean(0)]
        out["first_token"] = {"frames": len(picks), "actions": first}
    return out
