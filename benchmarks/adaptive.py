"""Adaptive token budgets (flexlam_rl.bench.adaptive): rate-distortion, agent-chosen lengths under a token cost,
adaptive latent BC.

    python benchmarks/adaptive.py --qs-run runs/quickstart [--seeds 0 1 2] [--parts ...] [--out benchmarks/results/adaptive]

Parts run separately accumulate in one results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from flexlam_rl import __version__
from flexlam_rl.bench import adaptive
from flexlam_rl.bench.experiment import Experiment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qs-run", type=Path, default=Path("runs/quickstart"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--ppo-steps", type=int, default=10_000)
    parser.add_argument("--parts", nargs="+", default=["rate_distortion", "token_cost", "latent_bc"])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/adaptive"))
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    start = time.time()
    path = args.out / "results.json"
    result: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}  # parts run separately accumulate
    result.pop("report", None)
    if "rate_distortion" in args.parts:
        result["rate_distortion"] = adaptive.rate_distortion_rows(args.out)
    if "token_cost" in args.parts:
        with tempfile.TemporaryDirectory() as runs:  # the agents themselves are not results
            result["token_cost"] = adaptive.token_cost_rows(args.qs_run, args.seeds, args.ppo_steps, Path(runs))
        adaptive.token_cost_figure(result["token_cost"], args.out / "token_cost.png")
    if "latent_bc" in args.parts:
        result["latent_bc"] = adaptive.latent_bc_rows(args.qs_run, args.seeds)
    result["command"] = (f"python benchmarks/adaptive.py --qs-run {args.qs_run} --seeds {' '.join(map(str, args.seeds))} "
                         f"--ppo-steps {args.ppo_steps}")
    result.setdefault("wall_s", {})[" ".join(args.parts)] = time.time() - start
    result["versions"] = {"flexlam_rl": __version__, "torch": torch.__version__, "python": platform.python_version()}
    text = adaptive.report(result)
    print(text)
    Experiment(args.out, "benchmarks/adaptive.py").write(result, text)


if __name__ == "__main__":
    main()
