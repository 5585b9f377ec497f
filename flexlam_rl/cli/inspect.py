"""``flexlam-inspect run_dir=...``: a run's config, progress, data and code usage, and what its LAM predicts."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from ..data import DataConfig
from ..errors import DataError
from ..inspect import collapse_warning, prediction_figure, run_summary
from ..model import FlexLAM
from ..tables import budget_table
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
    usage = summary["code_usage"] or []
    if usage:
        print("code usage (perplexity) per slot:", " ".join(f"{u:.2f}" for u in usage))
    if summary.get("heldout"):
        print(budget_table({"held-out": summary["heldout"]}))
    warning = collapse_warning(usage) if usage else None
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
