"""Scale-out: pretraining samples/s in one process and in two data-parallel ones (torchrun, gloo).

    python benchmarks/scale_out.py [--rounds 3] [--steps 100] [--out benchmarks/results/scale_out]

Same global batch (64) and LAM (benchmark size: 32 px, channels [8, 16, 32]) in every row; the
rows differ only in how the machine's cores are used: one process with 1 thread, one with 2
threads, and ``torchrun --standalone --nproc_per_node=2`` with 1 thread each. Each run times
``--steps`` updates of the real loop (:func:`flexlam_rl.pretrain.train.pretrain`) after 20 warm-up ones;
the configurations are interleaved ``--rounds`` times and the median is reported. On a 2-core
machine two processes cannot beat one process using both cores by much: the point of DDP here is
that it is correct (tests/test_distributed.py), and that it scales where there are more devices.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from flexlam_rl import LAMConfig
from flexlam_rl.bench.experiment import Experiment, versions
from flexlam_rl.bench.throughput import MODELS, training_data  # one dataset recipe for both benchmarks
from flexlam_rl.checkpoint import atomic_write_json
from flexlam_rl.tables import markdown_table

BATCH, WARMUP = 64, 20
CASES = {"1 process x 1 thread": (1, 1), "1 process x 2 threads": (1, 2), "2 processes x 1 thread (torchrun)": (2, 1)}


def worker(run_dir: Path, steps: int, out: Path) -> None:
    """One training run (one of torchrun's processes, or the only one); rank 0 writes seconds per update."""
    from flexlam_rl.pretrain.distributed import is_main_process
    from flexlam_rl.pretrain.train import TrainConfig, pretrain

    size, channels = MODELS["benchmark"]
    data = training_data(Path(os.environ["SCALE_OUT_ROOT"]), size)
    lam_cfg = LAMConfig(obs_shape=list(data.obs_shape), channels=channels, preprocess=data.preprocess)
    stamps: dict[int, float] = {}
    cfg = TrainConfig(steps=WARMUP + steps, batch_size=BATCH, progress=False, checkpoint_every=10**6, eval_every=10**6)
    pretrain(run_dir, data, lam_cfg, cfg, on_step=lambda step, loss: stamps.__setitem__(step, time.perf_counter()))
    if is_main_process():
        atomic_write_json(out, {"s_per_step": (stamps[WARMUP + steps] - stamps[WARMUP]) / steps})


def time_case(root: Path, processes: int, threads: int, steps: int, tag: str) -> float:
    out, run = root / f"{tag}.json", root / f"run_{tag}"
    script = [str(Path(__file__).resolve()), "--worker", str(run), "--steps", str(steps), "--result", str(out)]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    cmd = [*launcher, *script] if processes > 1 else [sys.executable, *script]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "SCALE_OUT_ROOT": str(root)}
    subprocess.run(cmd, env=env, check=True, capture_output=True, cwd=root)
    return json.loads(out.read_text())["s_per_step"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/scale_out"))
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
        return worker(args.worker, args.steps, args.result)
    times: dict[str, list[float]] = {name: [] for name in CASES}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        training_data(root, MODELS["benchmark"][0])  # collect once, before any timing
        for r in range(args.rounds):
            for i, (name, (processes, threads)) in enumerate(CASES.items()):
                times[name].append(time_case(root, processes, threads, args.steps, f"r{r}_{i}"))
                print(f"round {r} {name}: {BATCH / times[name][-1]:.0f} samples/s", flush=True)
    base = BATCH / statistics.median(times["1 process x 1 thread"])
    rows = [{"setup": name, "processes": p, "threads_each": t, "samples_per_s": BATCH / statistics.median(times[name]),
             "speedup_vs_1x1": BATCH / statistics.median(times[name]) / base, "s_per_step_rounds": times[name]}
            for name, (p, t) in CASES.items()]
    exp = Experiment(args.out, "benchmarks/scale_out.py")
    result = {"command": exp.command, "batch": BATCH, "cpu_count": os.cpu_count(), "rows": rows, "versions": versions()}
    text = (f"# Scale-out: pretraining samples/s (global batch {BATCH}, 32 px LAM, {os.cpu_count()} cores)\n\n"
            + markdown_table(["setup", "samples/s", "vs 1x1"],
                             [[r["setup"], f"{r['samples_per_s']:.0f}", f"{r['speedup_vs_1x1']:.2f}x"] for r in rows])
            + f"\n\n`{result['command']}`\n")
    print(text)
    exp.write(result, text)


if __name__ == "__main__":
    main()
