"""Agents that act (flexlam_rl.bench.acting): latent BC against random, expert and true-action BC play, its ablation,
and PPO fine-tuning from it against two from-scratch arms, on Breakout, Pong, Freeway and MiniGrid DoorKey.

    python benchmarks/acting.py [--scale default|smoke] [--threads 1] [--workdir DIR] [--out DIR] [--tasks ...] [--report-only]

Finished units go to <out>/units (commit them: the run spans sessions); the models behind them to --workdir, retrained
where missing and checked against the digests the units record. results.json (tasks, finetune, ablation,
protocol), results.md and curves.png go to --out once every unit exists.
"""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

import torch

from flexlam_rl.bench import acting
from flexlam_rl.bench.experiment import Experiment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(acting.SCALES), default="default")
    parser.add_argument("--threads", type=int, default=acting.PROTOCOL["threads"], help="torch threads (a resumed run must keep its own)")
    parser.add_argument("--workdir", type=Path, default=None, help="default: $FLEXLAM_RL_CACHE (or ~/.cache/flexlam-rl)/acting[_smoke]")
    parser.add_argument("--out", type=Path, default=None, help="default: benchmarks/results/acting[_smoke]; finished units in <out>/units")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--tasks", nargs="*", default=None, help="run only these tasks (the report needs them all)")
    args = parser.parse_args()
    smoke = args.scale == "smoke"
    suffix = "_smoke" if smoke else ""
    cache = Path(os.environ.get("FLEXLAM_RL_CACHE", Path.home() / ".cache" / "flexlam-rl"))
    work = (args.workdir or cache / f"acting{suffix}").resolve()
    exp = Experiment(args.out or Path(f"benchmarks/results/acting{suffix}"), "benchmarks/acting.py")
    protocol = {**acting.PROTOCOL, **({k: v for k, v in acting.SMOKE.items() if k in acting.PROTOCOL} if smoke else {}),
                "threads": args.threads}
    env = {**os.environ, "MINARI_DATASETS_PATH": str(work / "minari"), "OMP_NUM_THREADS": str(args.threads)}
    os.environ["MINARI_DATASETS_PATH"] = env["MINARI_DATASETS_PATH"]
    work.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    if not args.report_only:
        specs = [s for s in acting.SCALES[args.scale] if args.tasks is None or s.task in args.tasks]
        acting.run_units(exp, specs, work, env, protocol, acting.SMOKE["bc"] if smoke else {}, smoke)
    if args.tasks is None or args.report_only:
        command = "python benchmarks/acting.py" + (" --scale smoke" if smoke else "")
        result = acting.report(exp, acting.SCALES[args.scale], protocol, command)
        print(acting.markdown(result))
    print(f"python {platform.python_version()}; work in {work}")


if __name__ == "__main__":
    main()
