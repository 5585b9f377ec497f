"""``flexlam-inspect run_dir=...``: a run's config, progress, data and code usage, and what its LAM predicts."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from ..data import DataConfig
from ..diagnosis import collapse_warning
from ..errors import DataError
from ..inspect import prediction_figure, run_summary
from ..model import FlexLAM
from ..tables import budget_table, control_table
from ._common import hydra_entry


def inspect(cfg: DictConfig) -> None:
    run_dir = Path(cfg.run_dir)
    summary = run_summary(run_dir)
    lam_cfg, train = summary["lam"] or {}, summary["train"] or {}
    kind = "FlexLAM" if lam_cfg.get("nested_dropout") else "fixed-capacity LAM"
    print(f"{run_dir}: {kind}, K={lam_cfg.get('num_tokens')}, FSQ levels {lam_cfg.get('fsq_levels')}, observations "
          f"{lam_cfg.get('obs_shape')} (preprocessing {lam_cfg.get('preprocess')})")
    print(f"step {summary['step']} of {summary['steps']}" + (f", plateau state {summary['plateau']}" if summary["plateau"] else "")
          + (f", {summary['wall_time_s']:.0f} s of training" if summary["wall_time_s"] else ""))
    print(f"datasets: {summary['datasets']}")
    print("training: " + ", ".join(f"{k}={v}" for k, v in train.items()))
    heldout, control = summary.get("heldout"), summary.get("controllability")
    if heldout:  # the final scores flexlam-pretrain printed
        print("held-out next-frame MSE per token budget k (as flexlam-pretrain reported it):")
        print(budget_table({"held-out": heldout}))
        print("code usage (perplexity) per slot on held-out transitions:", " ".join(f"{u:.2f}" for u in heldout["code_usage"]))
    elif summary["code_usage"]:  # a run still training: the last checkpoint's window of training batches
        print("code usage (perplexity) per slot over the last training batches:", " ".join(f"{u:.2f}" for u in summary["code_usage"]))
    if control:
        print(f"what the tokens do ({control['transitions']} held-out transitions):")
        print(control_table(control))
    warning = collapse_warning(control or {"code_usage": summary["code_usage"] or []}, lam_cfg.get("obs_shape"))
    if warning:
        print(f"warning: {warning}")
    if cfg.figure:
        data_cfg = DataConfig(**{**(summary.get("data") or {}), "datasets": summary["datasets"]})
        try:
            data = data_cfg.load()
        except DataError as exc:
            print(f"no prediction figure: the run's datasets cannot be opened here ({exc})")
            return
        figure = prediction_figure(FlexLAM.load(run_dir / "lam"), data.heldout if len(data.heldout) else data.train,
                                   run_dir / "predictions.png")
        print(f"predictions (held-out o_t, real o_t+1, and the prediction per budget): {figure}" if figure
              else "no prediction figure: this LAM reads vectors, not frames")


main = hydra_entry("inspect", inspect)

if __name__ == "__main__":
    main()
