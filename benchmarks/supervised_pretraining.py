"""Action labels in pretraining, the ablation (flexlam_rl.bench.supervised): does a head on the first token(s) put
the action in the prefix?

    python benchmarks/supervised_pretraining.py --scale supervised_small [--only reach_d3f] [--arms none first@0.02]
    .venv-procgen/bin/python benchmarks/supervised_pretraining.py --scale supervised_games --only starpilot bigfish
    python benchmarks/supervised_pretraining.py --report-only

Each arm is a run of the benchmark harness under its own name; runs resume per (suite, seed). Protocol:
docs/benchmarks/supervised.md (fixed 2026-12-07, before any run).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import torch

from flexlam_rl.bench import supervised


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=supervised.SCALES)
    parser.add_argument("--arms", nargs="*", choices=list(supervised.ARMS), default=list(supervised.ARMS))
    parser.add_argument("--only", nargs="*", default=None, help="these suites of the scale")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--out", type=Path, default=supervised.OUT)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    command = "python benchmarks/supervised_pretraining.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    if not args.report_only:
        if args.scale is None:
            parser.error("--scale is needed to run (or --report-only)")
        supervised.run(args.scale, args.arms, args.only, command, args.out)
    result = supervised.report(command, args.out)
    for r in result["runs"]:
        if r["model"] == "flexlam":
            print(f"{r['suite']:10s} {r['arm']:13s} best k={r['best_budget']['k']} {r['metric']} {r['best_budget']['mean']:.3f} "
                  f"({r['best_budget']['of_idm']:.2f} of the all-label IDM's {r['idm_all_labels_balanced_accuracy']:.3f})")
    print(result["decisions"])


if __name__ == "__main__":
    main()
