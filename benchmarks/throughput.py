"""Throughput (flexlam_rl.bench.throughput): LAM training against the machine's fp32 matmul ceiling, and what latent
actions cost per env step.

    python benchmarks/throughput.py [--rounds 3] [--out benchmarks/results/throughput]
    python benchmarks/throughput.py --models games --conv-model games --skip-wrappers --out benchmarks/results/throughput_games

Every configuration is timed --rounds times, interleaved, and the median reported (the machine is shared).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
from pathlib import Path

import torch

from flexlam_rl import __version__
from flexlam_rl.bench import throughput as tp
from flexlam_rl.bench.experiment import Experiment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", nargs="+", default=list(tp.MODELS), choices=list(tp.MODELS))
    parser.add_argument("--training-only", action="store_true", help="time the training rows only (no conv table, no wrappers)")
    parser.add_argument("--conv-model", default="benchmark", choices=list(tp.CONV_BATCH), help="whose convs the conv table times")
    parser.add_argument("--skip-wrappers", action="store_true", help="no latent-action wrapper table")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/throughput"))
    args = parser.parse_args()
    exp = Experiment(args.out, "benchmarks/throughput.py")
    torch.set_num_threads(args.threads)
    ceiling = statistics.median(tp.matmul_gflops() for _ in range(5))
    print(f"matmul ceiling {ceiling:.1f} GFLOP/s", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        train = tp.training_rows(Path(tmp), args.rounds, ceiling, args.models)
    conv_cfg, batch = tp.conv_config(args.conv_model), tp.CONV_BATCH[args.conv_model]
    convs = [] if args.training_only else tp.conv_rows(conv_cfg, batch, args.rounds, ceiling)
    memory = [] if args.training_only else tp.memory_format_rows(conv_cfg, batch, args.rounds, ceiling)
    wrapper = [] if args.training_only or args.skip_wrappers else tp.wrapper_rows(args.rounds)
    result = {"command": exp.command, "threads": args.threads, "matmul_gflops": ceiling, "train": train, "conv_layers": convs,
              "memory_format": memory, "wrapper": wrapper, "conv_model": args.conv_model, "conv_batch": batch,
              "versions": {"flexlam_rl": __version__, "torch": torch.__version__, "python": platform.python_version(),
                           "machine": platform.processor() or platform.machine()}}
    text = tp.report(result)
    print(text)
    exp.write(result, text)


if __name__ == "__main__":
    main()
