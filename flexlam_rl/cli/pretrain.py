"""``flexlam-pretrain``: train a (Flex)LAM on local Minari datasets or videos, then report error per budget."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from ..data.transitions import DataConfig
from ..pretrain.distributed import is_main_process
from ..pretrain.pipeline import run_pretraining
from ..pretrain.supervision import SupervisionConfig
from ..pretrain.train import TrainConfig, lam_config_for
from ..tables import budget_table, control_table
from ._common import hydra_entry, run_dir, section


def pretrain_from_config(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Parse the ``data``/``lam``/``train`` groups, train or resume in ``out_dir``, print the report."""
    train_cfg = section(TrainConfig, cfg.train, "train")
    data_cfg = section(DataConfig, cfg.data, "data")
    supervision = section(SupervisionConfig, cfg.get("supervision") or {}, "supervision")
    lam_config_for(cfg.lam, None)  # typos fail before any dataset is opened
    data = data_cfg.load()
    lam_cfg = lam_config_for(cfg.lam, data)
    name = cfg.lam.get("name", "lam")
    main = is_main_process()  # under torchrun, rank 0 alone prints
    if main:
        print(f"pretraining {'FlexLAM' if lam_cfg.nested_dropout else 'fixed-capacity LAM'} (K={lam_cfg.num_tokens}, "
              f"V={lam_cfg.codebook_size}) on {len(data.train)} transitions from {data.dataset_ids} -> {out_dir}")
    budgets = list(cfg.eval.budgets) if cfg.eval.budgets else None
    metrics = run_pretraining(out_dir, data, lam_cfg, train_cfg, budgets,
                              run_info={"lam_name": name, "data": {k: v for k, v in vars(data_cfg).items() if k != "datasets"}},
                              on_check=print_check if main else None, supervision=supervision)
    if not main:
        return metrics
    if metrics["resumed_from"]:
        print(f"resumed from step {metrics['resumed_from']}")
    evaluation = metrics["heldout"]
    print("\nheld-out next-frame MSE per token budget k (lower is better):")
    print(budget_table({name: evaluation}))
    print("code usage (perplexity) per slot:", " ".join(f"{u:.2f}" for u in evaluation["code_usage"]),
          f"(1 = collapsed, {lam_cfg.codebook_size} = uniform)")
    control = metrics["controllability"]
    print(f"\nwhat the tokens do ({control['transitions']} held-out transitions; {control['changed_fraction']:.1%} of pixels "
          f"change per step; controllability = 1 - own / shuffled on changed pixels, 0 = tokens ignored):")
    print(control_table(control))
    if "supervision" in metrics:
        sup = metrics["supervision"]
        score = "accuracy" if sup["action_space"]["type"] == "discrete" else "R^2"
        head = f"the first {sup['tokens']} token(s)" if sup["head"] == "first" else "every budget's prefix"
        checked = f"{sup['action_head']:.3f}" if sup["action_head"] is not None else "n/a (checked transitions store no actions)"
        print(f"\naction supervision: {sup['labels_trained_on']} of {sup['labels']} labeled transitions trained a head on {head} "
              f"(weight {sup['weight']}); its {score} on checked transitions: {checked}. flexlam-align with "
              f"labels.fraction/count, seed and heldout_fraction as in supervision.* uses the same labels.")
    print(f"\nLAM checkpoint: {Path(metrics['lam_dir']).resolve()}")
    return metrics


def print_check(step: int, report: dict[str, Any]) -> None:
    """One line per held-out check: error per budget, controllability per budget, code usage per slot, each with the
    transitions it read (the checks read a fixed subset, the final table every held-out transition: the numbers
    differ where those differ, and where the last check came before the last update)."""
    mse = " ".join(f"{v:.5f}" for v in report["mse_checks"].values())
    control = " ".join(f"{v:.2f}" for v in report["controllability"].values())
    print(f"step {step}: checked MSE per k {mse} ({report['mse_transitions']} transitions) | controllability per k {control} "
          f"and perplexity per slot {' '.join(f'{u:.2f}' for u in report['code_usage'])} ({report['transitions']} of them)"
          + (f" | action head {report['action_head']:.3f}" if report.get("action_head") is not None else ""), flush=True)


main = hydra_entry("pretrain", lambda cfg: pretrain_from_config(cfg, run_dir()))

if __name__ == "__main__":
    main()
