"""``flexlam-align``: train a translator on a few labels and report its accuracy per budget."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import hydra
import numpy as np
from omegaconf import DictConfig

from ..align import (
    AlignConfig,
    LabelConfig,
    action_spec,
    alignment_by_budget,
    embed_transitions,
    select_labels,
    supervised_idm_score,
    train_supervised_idm,
    train_translator,
)
from ..checkpoint import atomic_write_json
from ..data import load_transitions
from ..model import FlexLAM
from ._common import CONFIG_PATH, clean_errors, dataclass_from, to_plain


def align_from_config(cfg: DictConfig) -> dict[str, Any]:
    """Select labels, fit the translator (and the supervised reference), evaluate, save."""
    label_values = dict(to_plain(cfg.labels))
    label_ids = label_values.pop("datasets")
    heldout_fraction = label_values.pop("heldout_fraction")
    label_cfg = dataclass_from(LabelConfig, label_values, "labels")  # config errors before any loading
    align_cfg = dataclass_from(AlignConfig, cfg.translator, "translator")
    lam_dir = Path(cfg.lam_dir)
    lam = FlexLAM.load(lam_dir)
    label_ids = label_ids or list(getattr(lam, "extra", {}).get("datasets", []))
    if not label_ids:
        raise ValueError(f"No label datasets: set labels.datasets (the LAM at {lam_dir} does not record its own).")

    label_data = load_transitions(label_ids, heldout_fraction, label_cfg.seed)
    _check_obs(lam, label_data.obs_shape, label_ids)
    labels = select_labels(label_data.train, label_cfg)
    eval_ids = list(cfg.eval.datasets)
    overlap = set(eval_ids) & set(label_ids)
    eval_data = load_transitions(eval_ids, heldout_fraction if overlap else 0.0, label_cfg.seed)
    eval_set_raw = eval_data.heldout if overlap else eval_data.train  # never score on label episodes
    _check_obs(lam, eval_data.obs_shape, eval_ids)

    space = label_data.train.sources[0].action_space
    spec = action_spec(space)
    labeled = embed_transitions(lam, label_data.train, labels)
    evaluation = embed_transitions(lam, eval_set_raw, np.arange(len(eval_set_raw)))
    translator = train_translator(lam, labeled, spec, align_cfg)
    budgets = list(cfg.eval.budgets) if cfg.eval.budgets else None
    scores = alignment_by_budget(lam, translator, evaluation, budgets)
    metric = "accuracy" if spec["type"] == "discrete" else "r2"
    result: dict[str, Any] = {
        "metric": metric, "by_budget": scores, "labels": len(labels), "label_pool": len(label_data.train),
        "protocol": label_cfg.protocol, "label_datasets": label_ids, "eval_datasets": eval_ids,
        "eval_transitions": len(evaluation.actions), "lam": str(lam_dir.resolve()),
    }
    if cfg.eval.supervised_idm:
        idm = train_supervised_idm(lam, labeled, spec, align_cfg)
        result["supervised_idm"] = supervised_idm_score(idm, evaluation)
    out = Path(cfg.out) if cfg.out else lam_dir.parent / "translator"
    translator.save(out, extra={"lam": str(lam_dir.resolve()), "labels": dataclasses.asdict(label_cfg),
                                "label_datasets": label_ids, "align": dataclasses.asdict(align_cfg), "scores": scores})
    atomic_write_json(out.parent / "align_metrics.json", result)
    best = max(scores, key=scores.get)
    print(f"translator: {len(labels)} labels ({label_cfg.protocol} protocol, {len(label_data.train)} transitions in the pool), "
          f"{align_cfg.steps} updates")
    print(f"held-out {metric} on {len(evaluation.actions)} expert transitions from {eval_ids}:")
    print("| k | " + " | ".join(str(k) for k in scores) + " |\n|" + "---|" * (len(scores) + 1))
    print(f"| {metric} | " + " | ".join(f"{v:.3f}" for v in scores.values()) + " |")
    if "supervised_idm" in result:
        print(f"best budget k={best}: {scores[best]:.3f} vs supervised IDM on the same labels: {result['supervised_idm']:.3f}")
    print(f"\ntranslator checkpoint: {out.resolve()}")
    result["translator"] = str(out.resolve())
    return result


def _check_obs(lam: FlexLAM, shape: tuple[int, ...], ids: list[str]) -> None:
    if tuple(shape) != tuple(lam.config.obs_shape):
        raise ValueError(f"Datasets {ids} have observations {list(shape)}, but the LAM expects {lam.config.obs_shape}.")


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="align")
@clean_errors
def main(cfg: DictConfig) -> None:
    align_from_config(cfg)


if __name__ == "__main__":
    main()
