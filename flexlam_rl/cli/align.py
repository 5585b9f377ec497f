"""``flexlam-align``: train a translator on a few labels and report its accuracy per budget."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from ..align import AlignConfig, AlignData, AlignOptions, LabelConfig, align_lam
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
        cfg.lam_dir, label_cfg, align_cfg, AlignData(label_ids, plain(cfg.eval.datasets), heldout_fraction),
        options=AlignOptions(plain(cfg.eval.budgets), bool(cfg.eval.supervised_idm), bool(cfg.eval.get("idm_ceiling", False)),
                             log=lambda message: print(message, flush=True)),
        out=cfg.out, overwrite=bool(cfg.get("overwrite", False)),
    )
    scores, metric = result.scores, result.metric
    print(f"translator: {len(result.labels)} labels ({label_cfg.protocol} protocol, {result.pool_size} transitions in the "
          f"pool), {align_cfg.steps} updates")
    print(f"held-out {metric} on {result.eval_transitions} transitions from {metrics['eval_datasets']} "
          f"(no episode the labels came from):")
    rows = [[metric, *(f"{v:.3f}" for v in scores.values())]]
    if result.balanced is not None:
        rows.append(["balanced accuracy", *(f"{v:.3f}" for v in result.balanced.values())])
    print(markdown_table(["k", *scores], rows))
    best = max(scores, key=scores.get)
    if result.majority_rate is not None:
        print(f"chance: always answering the commonest action scores {result.majority_rate:.3f} accuracy; any constant "
              f"answer, {1 / result.eval_classes:.3f} balanced accuracy ({result.eval_classes} actions occur here)")
    if result.supervised_idm is not None:
        print(f"best budget k={best}: {scores[best]:.3f} vs supervised IDM on the same labels: {result.supervised_idm:.3f}"
              + (f" (balanced {result.balanced[best]:.3f} vs {result.supervised_idm_balanced:.3f})" if result.balanced else ""))
    if result.idm_all_labels is not None:
        balanced = f" (balanced {result.idm_all_labels_balanced:.3f})" if result.idm_all_labels_balanced is not None else ""
        print(f"ceiling: supervised IDM on every one of the pool's {result.pool_size} transitions: {result.idm_all_labels:.3f}{balanced}")
    if "pretraining_labels" in metrics:
        same = metrics["pretraining_labels"]
        print(f"the LAM was pretrained with {same['labels']} action labels: "
              + ("these labels are the same transitions" if same["same"] else "these labels are OTHER transitions (more labels in all)"))
    print(f"\ntranslator checkpoint: {metrics['translator']}")
    return metrics


main = hydra_entry("align", align_from_config)

if __name__ == "__main__":
    main()
