"""``flexlam-align``: train a translator on a few labels and report its accuracy per budget."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from ..align import AlignConfig, LabelConfig, align_lam
from ..config import plain
from ..tables import markdown_table
from ._common import hydra_entry, section


def align_from_config(cfg: DictConfig) -> dict[str, Any]:
    """Parse the ``labels``/``translator``/``eval`` groups, align, print the report; returns the metrics."""
    label_values = plain(cfg.labels)
    label_ids = label_values.pop("datasets")
    heldout_fraction = label_values.pop("heldout_fraction")
    label_cfg = section(LabelConfig, label_values, "labels")
    align_cfg = section(AlignConfig, cfg.translator, "translator")
    result, metrics = align_lam(
        cfg.lam_dir, label_cfg, align_cfg, label_ids, eval_ids=plain(cfg.eval.datasets), heldout_fraction=heldout_fraction,
        budgets=plain(cfg.eval.budgets), supervised_idm=bool(cfg.eval.supervised_idm), out=cfg.out,
        overwrite=bool(cfg.get("overwrite", False)), log=lambda message: print(message, flush=True),
    )
    scores, metric = result.scores, result.metric
    print(f"translator: {len(result.labels)} labels ({label_cfg.protocol} protocol, {result.pool_size} transitions in the "
          f"pool), {align_cfg.steps} updates")
    print(f"held-out {metric} on {result.eval_transitions} transitions from {metrics['eval_datasets']} "
          f"(no episode the labels came from):")
    print(markdown_table(["k", *scores], [[metric, *(f"{v:.3f}" for v in scores.values())]]))
    if result.supervised_idm is not None:
        best = max(scores, key=scores.get)
        print(f"best budget k={best}: {scores[best]:.3f} vs supervised IDM on the same labels: {result.supervised_idm:.3f}")
    print(f"\ntranslator checkpoint: {metrics['translator']}")
    return metrics


main = hydra_entry("align", align_from_config)

if __name__ == "__main__":
    main()
