"""``flexlam-pretrain``: train a (Flex)LAM on local Minari datasets, then report error per budget."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from ..checkpoint import atomic_write_json
from ..config import LAMConfig
from ..data import TransitionData, load_transitions
from ..evaluate import format_budget_table, reconstruction_by_budget
from ..model import FlexLAM
from ..train import TrainConfig, pretrain
from ._common import CONFIG_PATH, clean_errors, dataclass_from, run_dir, to_plain


def lam_config_from(lam_cfg: Any, data: TransitionData | None) -> LAMConfig:
    """Hydra ``lam`` group + the data's observation layout -> a validated :class:`LAMConfig`.

    With ``data=None`` only the data-independent fields are checked (against a stand-in
    image shape), so a typo fails before any dataset is opened.
    """
    values = dict(to_plain(lam_cfg))
    values.pop("name", None)
    values.setdefault("obs_shape", list(data.obs_shape) if data else [64, 64, 3])
    values.setdefault("obs_dtype", "uint8" if len(values["obs_shape"]) == 3 else "float32")
    values.setdefault("preprocess", data.preprocess if data else {"kind": "identity"})
    return LAMConfig.from_dict(values)


def pretrain_from_config(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Load data, train or resume in ``out_dir``, evaluate per budget; returns the metrics."""
    train_cfg = dataclass_from(TrainConfig, cfg.train, "train")
    lam_config_from(cfg.lam, None)
    data = load_transitions(
        list(cfg.data.datasets), cfg.data.heldout_fraction, cfg.data.split_seed, cfg.data.obs_key, cfg.data.video_frame_size
    )
    lam_cfg = lam_config_from(cfg.lam, data)
    print(f"pretraining {'FlexLAM' if lam_cfg.nested_dropout else 'fixed-capacity LAM'} (K={lam_cfg.num_tokens}, "
          f"V={lam_cfg.codebook_size}) on {len(data.train)} transitions from {data.dataset_ids} -> {out_dir}")
    result = pretrain(out_dir, data, lam_cfg, train_cfg, run_info={"lam_name": cfg.lam.get("name", "lam")})
    if result.resumed_from:
        print(f"resumed from step {result.resumed_from}")
    lam = FlexLAM.load(result.lam_dir)
    budgets = list(cfg.eval.budgets) if cfg.eval.budgets else None
    evaluation = reconstruction_by_budget(lam, data.heldout, budgets)
    metrics = {"step": result.step, "wall_time_s": result.wall_time_s, "heldout": evaluation,
               "datasets": data.dataset_ids, "lam": lam_cfg.to_dict()}
    atomic_write_json(out_dir / "metrics.json", metrics)
    print("\nheld-out next-frame MSE per token budget k (lower is better):")
    print(format_budget_table({cfg.lam.get("name", "lam"): evaluation}))
    print("code usage (perplexity) per slot:", " ".join(f"{u:.2f}" for u in evaluation["code_usage"]),
          f"(1 = collapsed, {lam.codebook_size} = uniform)")
    print(f"\nLAM checkpoint: {result.lam_dir.resolve()}")
    return metrics


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="pretrain")
@clean_errors
def main(cfg: DictConfig) -> None:
    pretrain_from_config(cfg, run_dir())


if __name__ == "__main__":
    main()
