"""``flexlam-analyze <analysis> key=value ...``: analyses of trained LAMs (``rate-distortion``, ``token-probes``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from ..config import plain
from ..data import DataConfig
from ..evaluate.analysis import run_rate_distortion
from ..evaluate.probes import run_token_probes
from ..model import FlexLAM
from ..pretrain.runs import RunLayout
from ..tables import markdown_table
from ._common import hydra_entry


def output_dir(cfg: DictConfig) -> Path:
    """``out``, or the analysed LAM's run folder (``<lam_dir>/../analysis``): an analysis belongs to its run."""
    return Path(cfg.out) if cfg.out else RunLayout.of_lam(cfg.lam_dir).analysis


def rate_distortion_from_config(cfg: DictConfig) -> dict[str, Any]:
    """Run the analysis, print one table per task, say where the figures are."""
    datasets = plain(cfg.datasets) or FlexLAM.load(cfg.lam_dir).extra.get("datasets")  # null: the LAM's own
    data = DataConfig(datasets, heldout_fraction=float(cfg.heldout_fraction), split_seed=int(cfg.split_seed)) if datasets else None
    result = run_rate_distortion(cfg.lam_dir, output_dir(cfg), plain(cfg.fixed_dirs), data,
                                 tols=plain(cfg.tols), hist_tol=float(cfg.hist_tol), limit=plain(cfg.limit), name=str(cfg.name))
    for task, entry in result["tasks"].items():
        print(f"\n{task}: {entry['transitions']} held-out transitions; mean tokens -> next-frame MSE")
        rows = [[f"k = {p['k']}", f"{p['tokens']:.2f}", f"{p['mse']:.5f}"] for p in entry["truncation"]]
        rows += [[f"adaptive, tol {p['tol']:g}", f"{p['tokens']:.2f}", f"{p['mse']:.5f}"] for p in entry["adaptive"]]
        rows += [[name, f"{p['tokens']:.2f}", f"{p['mse']:.5f}"] for name, p in entry["fixed"].items()]
        print(markdown_table(["code", "tokens", "mse"], rows))
    print("\nfigures:", *result["figures"])
    return result


def token_probes_from_config(cfg: DictConfig) -> dict[str, Any]:
    """Probe the first k tokens for the action and the distractors; print one table per task."""
    out = output_dir(cfg)
    results = run_token_probes(cfg.lam_dir, plain(cfg.tasks), out, plain(cfg.fixed_dirs), int(cfg.episodes), int(cfg.seed),
                               str(cfg.name))
    for task, result in results.items():
        print(f"\n{task}: probes on {result['held_out']} held-out transitions (action: {result['action_metric']}, distractor: R^2)")
        rows = [[f"FlexLAM k = {k}", f"{v:.3f}", f"{result['flexlam']['distractor'][k]:.3f}"]
                for k, v in result["flexlam"]["action"].items()]
        rows += [[name, f"{v:.3f}", f"{r['distractor'][k]:.3f}"] for name, r in result.items() if name.startswith("fixed")
                 for k, v in r["action"].items()]
        print(markdown_table(["tokens", "-> action", "-> distractor"], rows))
    print(f"\nfigure: {out / cfg.name}.png")
    return results


ANALYSES = {"rate-distortion": ("rate_distortion", rate_distortion_from_config),
            "token-probes": ("token_probes", token_probes_from_config)}


def main() -> None:
    """The first argument names the analysis; Hydra parses the rest against its config."""
    if len(sys.argv) < 2 or sys.argv[1] not in ANALYSES:
        print(f"usage: flexlam-analyze {{{','.join(ANALYSES)}}} key=value ...", file=sys.stderr)
        sys.exit(2)
    config_name, task = ANALYSES[sys.argv.pop(1)]
    hydra_entry(config_name, task)()


if __name__ == "__main__":
    main()
