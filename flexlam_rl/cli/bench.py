"""``flexlam-bench``: the token-budget benchmark (see flexlam_rl/bench.py and configs/bench.yaml)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig

from ..bench import BenchConfig, SuiteSpec, run_benchmark, write_reports
from ..data import cache_root
from ._common import CONFIG_PATH, clean_errors, dataclass_from, to_plain


def bench_config_from(scale: DictConfig, name: str) -> BenchConfig:
    values = dict(to_plain(scale))
    values["name"] = name
    values["suites"] = [dataclass_from(SuiteSpec, suite, "scale.suites[]") for suite in values.get("suites", [])]
    return dataclass_from(BenchConfig, values, "scale")


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="bench")
@clean_errors
def main(cfg: DictConfig) -> None:
    torch.set_num_threads(int(cfg.threads))
    bench = bench_config_from(cfg.scale, cfg.name)
    out_dir = Path(cfg.out_dir)
    cache = Path(cfg.cache_dir) if cfg.cache_dir else cache_root() / "bench"
    command = ("flexlam-bench " + " ".join(shlex.quote(a) for a in sys.argv[1:])).strip()
    if cfg.report_only:
        result = write_reports(bench, out_dir, command)
    else:
        result = run_benchmark(bench, out_dir, cache, command, only=list(cfg.only) if cfg.only else None)
    holds = sum(c["holds"] for c in result["claims"])
    print(f"\nclaim holds in {holds}/{len(result['claims'])} cells; "
          f"seeds done: {result['seeds_done']}; reports in {out_dir.resolve()} (results.md, results.json, budget_curves.png)")


if __name__ == "__main__":
    main()
