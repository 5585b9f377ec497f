"""``flexlam-analyze <analysis> key=value ...``: analyses of trained LAMs (``rate-distortion``)."""

from __future__ import annotations

import sys
from typing import Any

from omegaconf import DictConfig

from ..analysis import run_rate_distortion
from ..config import plain
from ..tables import markdown_table
from ._common import hydra_entry


def rate_distortion_from_config(cfg: DictConfig) -> dict[str, Any]:
    """Run the analysis, print one table per task, say where the figures are."""
    result = run_rate_distortion(cfg.lam_dir, cfg.out, plain(cfg.fixed_dirs), plain(cfg.datasets), float(cfg.heldout_fraction),
                                 int(cfg.split_seed), plain(cfg.tols), float(cfg.hist_tol), plain(cfg.limit), str(cfg.name))
    for task, entry in result["tasks"].items():
        print(f"\n{task}: {entry['transitions']} held-out transitions; mean tokens -> next-frame MSE")
        rows = [[f"k = {p['k']}", f"{p['tokens']:.2f}", f"{p['mse']:.5f}"] for p in entry["truncation"]]
        rows += [[f"adaptive, tol {p['tol']:g}", f"{p['tokens']:.2f}", f"{p['mse']:.5f}"] for p in entry["adaptive"]]
        rows += [[name, f"{p['tokens']:.2f}", f"{p['mse']:.5f}"] for name, p in entry["fixed"].items()]
        print(markdown_table(["code", "tokens", "mse"], rows))
    print("\nfigures:", *result["figures"])
    return result


ANALYSES = {"rate-distortion": ("rate_distortion", rate_distortion_from_config)}


def main() -> None:
    """The first argument names the analysis; Hydra parses the rest against its config."""
    if len(sys.argv) < 2 or sys.argv[1] not in ANALYSES:
        print(f"usage: flexlam-analyze {{{','.join(ANALYSES)}}} key=value ...", file=sys.stderr)
        sys.exit(2)
    config_name, task = ANALYSES[sys.argv.pop(1)]
    hydra_entry(config_name, task)()


if __name__ == "__main__":
    main()
