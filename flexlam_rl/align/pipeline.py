"""``flexlam-align`` as a library call: a saved LAM + label datasets -> a saved translator and its scores."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..checkpoint import atomic_write_json
from ..data.transitions import require_frames
from ..errors import ConfigError, DataError, FlexLAMWarning
from ..model.lam import FlexLAM
from ..pretrain.runs import RunLayout, default_translator_dir
from .labels import LabelConfig, label_and_eval_sets, label_digest
from .training import AlignConfig, AlignmentResult, AlignOptions, run_alignment


@dataclasses.dataclass
class AlignData:
    """Which datasets give the labels and which the scores (both default to the LAM's own pretraining datasets,
    recorded in its checkpoint); a dataset that is both is split by episode (``heldout_fraction``): labels from its
    training episodes, scores on its held-out ones."""

    label_ids: Sequence[str] | None = None
    eval_ids: Sequence[str] | None = None
    heldout_fraction: float = 0.1


def align_lam(
    lam_dir: str | Path, label_cfg: LabelConfig, align_cfg: AlignConfig, data: AlignData | None = None, *,
    options: AlignOptions | None = None, out: str | Path | None = None, overwrite: bool = False,
) -> tuple[AlignmentResult, dict[str, Any]]:
    """Align the LAM saved at ``lam_dir`` and save the translator to ``out`` (default ``<lam_dir>/../translator``).

    Labels and scores come from ``data`` (:class:`AlignData`); ``options`` (:class:`AlignOptions`) default to a
    supervised IDM on the same labels as the reference. Also writes ``align_metrics.json`` beside the translator;
    returns the result and those metrics. Discrete actions add balanced accuracy per budget and the majority-class rate. A LAM
    pretrained with action labels (:mod:`flexlam_rl.pretrain.supervision`) adds ``pretraining_labels``: how many, and whether
    this translator's labels are the same transitions (a warning when they are not).
    """
    lam_dir = Path(lam_dir)
    out = Path(out) if out else default_translator_dir(lam_dir)
    if (out / "model.safetensors").exists() and not overwrite:
        raise ConfigError(f"{out} already holds a translator; pass out=<another dir>, or overwrite=true to replace it.")
    data = data or AlignData()
    lam = FlexLAM.load(lam_dir)
    own = list(getattr(lam, "extra", {}).get("datasets", []))
    label_ids = list(data.label_ids or own)
    if not label_ids:
        raise DataError(f"No label datasets: set labels.datasets (the LAM at {lam_dir} does not record its own).")
    eval_ids = list(data.eval_ids or own or label_ids)
    pool, evaluation = label_and_eval_sets(label_ids, eval_ids, data.heldout_fraction, label_cfg.seed)
    require_frames(pool, lam.config.obs_shape, f"the LAM at {lam_dir}")
    result = run_alignment(lam, pool, evaluation, label_cfg, align_cfg, options or AlignOptions(supervised_idm=True))
    result.translator.save(out, extra={"lam": str(lam_dir.resolve()), "labels": dataclasses.asdict(label_cfg),
                                       "label_datasets": label_ids, "align": dataclasses.asdict(align_cfg),
                                       "scores": result.scores})
    metrics: dict[str, Any] = {
        "metric": result.metric, "by_budget": result.scores, "labels": len(result.labels), "label_pool": result.pool_size,
        "protocol": label_cfg.protocol, "label_datasets": label_ids, "eval_datasets": eval_ids,
        "eval_transitions": result.eval_transitions, "lam": str(lam_dir.resolve()), "translator": str(out.resolve()),
    }
    if result.supervised_idm is not None:
        metrics["supervised_idm"] = result.supervised_idm
    supervised = getattr(lam, "extra", {}).get("supervision")
    if supervised is not None:  # the LAM was pretrained with action labels: are these the same ones?
        same = label_digest(pool, result.labels) == supervised["label_digest"]
        metrics["pretraining_labels"] = {"labels": supervised["labels"], "same": same}
        if not same:
            warnings.warn(
                f"The LAM at {lam_dir} was pretrained with {supervised['labels']} action labels (supervision.fraction="
                f"{supervised['fraction']}, count={supervised['count']}, seed={supervised['seed']}, heldout_fraction="
                f"{supervised['heldout_fraction']}, datasets {supervised['datasets']}); this translator's labels are "
                f"others, so the pipeline used more labels than either count says. Use the same values in labels.* to "
                f"reuse them.", FlexLAMWarning, stacklevel=2)
    for key in ("balanced", "majority_rate", "eval_classes", "supervised_idm_balanced", "idm_all_labels", "idm_all_labels_balanced"):
        if getattr(result, key) is not None:
            metrics["balanced_by_budget" if key == "balanced" else key] = getattr(result, key)
    atomic_write_json(RunLayout(out.parent).align_metrics, metrics)  # beside the translator, wherever it went
    return result, metrics
