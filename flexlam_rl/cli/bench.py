"""``flexlam-bench``: the token-budget benchmark (see flexlam_rl/bench and configs/bench.yaml)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import torch
from omegaconf import DictConfig

from ..bench import BenchConfig, run_benchmark, suite_key, write_reports
from ..checkpoint import read_json
from ..data.sources import cache_root
from ._common import hydra_entry


def bench(cfg: DictConfig) -> None:
    torch.set_num_threads(int(cfg.threads))
    bench = BenchConfig.from_scale(cfg.scale, cfg.name)
    out_dir = Path(cfg.out_dir)
    cache = Path(cfg.cache_dir) if cfg.cache_dir else cache_root() / "bench"
    command = ("flexlam-bench " + " ".join(shlex.quote(a) for a in sys.argv[1:])).strip()
    if cfg.report_only:  # the run's own command stays on record; this one re-aggregated it
        previous = out_dir / "results.json"
        run_command = read_json(previous, "benchmark results", 100 * 2**20).get("command", command) if previous.is_file() else command
        result = write_reports(bench, out_dir, run_command, {s.name: suite_key(bench, s) for s in bench.suites},
                               reaggregated_by=command if run_command != command else None,
                               allow_mixed_code=bool(cfg.allow_mixed_code))
    else:
        result = run_benchmark(bench, out_dir, cache, command, only=list(cfg.only) if cfg.only else None,
                               allow_mixed_code=bool(cfg.allow_mixed_code))
    for view, counts in result["counts"].items():
        raw = result["counts_raw"][view]
        print(f"\n{view}: FlexLAM better in {counts['better']}, tie in {counts['tie']}, worse in {counts['worse']} cells after "
              f"the {result['protocol']['multiplicity']} adjustment (unadjusted {raw['better']} / {raw['tie']} / {raw['worse']}; "
              f"seeds {result['seeds_done']})")
    print(f"reports in {out_dir.resolve()} (results.md, results.json, budget_curves.png, learning_curves.png)")


main = hydra_entry("bench", bench)

if __name__ == "__main__":
    main()
