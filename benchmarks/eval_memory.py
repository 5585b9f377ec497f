"""What a games LAM's held-out check costs, by call size and allocator setting: page faults, kernel time, wall time.

    python benchmarks/eval_memory.py [--rounds 3] [--threads 2] [--out benchmarks/results/eval_memory]

A held-out check of ``flexlam-pretrain`` (and of every benchmark model) scores 512 transitions per budget
(:func:`flexlam_rl.evaluate.reconstruction.reconstruction_by_budget`) and decodes 256 with own, shuffled and null tokens
(:func:`flexlam_rl.evaluate.diagnosis.controllability`). On the games-size LAM (lam=games, Breakout 64x64 grayscale) these
calls used to decode 256 and 2176 frames at a time: activations of 60-570 MB, which glibc maps fresh from the
kernel on every call. Settings, each in its own process (the allocator setting cannot be undone in a process):

- ``calls``: ``one per batch`` (the old sizes: 256 decoded frames per reconstruction call, every latent of a
  128-transition batch in one controllability call) or ``capped`` (``FlexLAM.eval_rows``: no activation over
  ``EVAL_ACTIVATION_BYTES``);
- ``allocator``: glibc's default or :func:`flexlam_rl.runtime.keep_freed_memory` (what the CLIs apply);

plus one training update (batch 32) under each allocator setting. Untrained weights: they cost what trained ones do.
Every configuration is timed ``--rounds`` times after one warm-up and the median is reported; the rows come from
one run, so their ratios are comparable.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SETTINGS = [("one per batch", False), ("capped", False), ("one per batch", True), ("capped", True)]
HEADER = ["calls", "allocator", "check wall s", "check user s", "check sys s", "page faults / check", "update ms",
          "update page faults"]


def usage() -> tuple[float, int, float, float]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), r.ru_minflt, r.ru_utime, r.ru_stime


def measure(fn, rounds: int) -> dict[str, float]:
    """Median wall, user and sys seconds and page faults of ``fn`` over ``rounds`` calls after one warm-up."""
    fn()
    rows = []
    for _ in range(rounds):
        a = usage()
        fn()
        b = usage()
        rows.append([b[0] - a[0], b[2] - a[2], b[3] - a[3], b[1] - a[1]])
    wall, user, sys_s, faults = (statistics.median(col) for col in zip(*rows))
    return {"wall_s": wall, "user_s": user, "sys_s": sys_s, "page_faults": faults}


def child(calls: str, keep: bool, rounds: int, threads: int, root: Path) -> dict[str, Any]:
    """One setting, in this process: a check's cost and one training update's."""
    import torch

    torch.set_num_threads(threads)
    from flexlam_rl import FlexLAM, LAMConfig
    from flexlam_rl.config import Episodes
    from flexlam_rl.data.collect import ensure_dataset
    from flexlam_rl.data.transitions import load_transitions
    from flexlam_rl.evaluate.diagnosis import controllability
    from flexlam_rl.evaluate.reconstruction import reconstruction_by_budget
    from flexlam_rl.model import lam as model_module
    from flexlam_rl.pretrain.plateau import heldout_subset
    from flexlam_rl.pretrain.train import CONTROL_TRANSITIONS, TrainConfig, lam_config_for, lam_preset, pretrain
    from flexlam_rl.runtime import keep_freed_memory

    if keep:
        assert keep_freed_memory(), "glibc's mallopt is not available here"
    os.environ["MINARI_DATASETS_PATH"] = str(root / "minari")
    os.environ["FLEXLAM_RL_CACHE"] = str(root / "cache")
    dataset_id, _ = ensure_dataset("eval_memory/breakout/noisy-v0", "breakout", "noisy", Episodes(10, 0, 200), epsilon=0.5)
    data = load_transitions(dataset_id, heldout_fraction=0.1)
    base = {**lam_preset("games"), "obs_shape": list(data.obs_shape), "preprocess": data.preprocess, "channels": [16, 32, 64]}
    lam = FlexLAM(LAMConfig.from_dict(lam_config_for(base, data).to_dict()))
    checks = heldout_subset(data, 512)
    budgets = list(range(1, lam.num_tokens + 1))
    if calls == "one per batch":  # the sizes before eval_rows: 256 decoded frames; a whole 128-transition batch
        model_module.EVAL_ACTIVATION_BYTES = 2**62
        recon_batch = 256
    else:
        recon_batch = None

    def check() -> None:
        reconstruction_by_budget(lam, data.checks, budgets, batch_size=recon_batch, indices=checks)
        controllability(lam, data.checks, budgets, checks[:CONTROL_TRANSITIONS])

    recon_latents, control_latents = len(budgets) + 1, 2 * len(budgets) + 1  # + the all-null code
    recon_rows = recon_batch // recon_latents if recon_batch else lam.eval_rows(recon_latents)
    result = {"calls": calls, "keep_freed_memory": keep, "frames_per_call": {
        "reconstruction": recon_rows * recon_latents, "controllability": min(128, lam.eval_rows(control_latents)) * control_latents}}
    result["check"] = measure(check, rounds)
    stamps: dict[int, tuple] = {}
    warm, steps = 3, 20
    pretrain(root / "run" / f"{calls}-{keep}", data, lam.config, TrainConfig(steps=warm + steps, batch_size=32, progress=False,
             checkpoint_every=10**6, eval_every=10**6, log_every=25), on_step=lambda step, loss: stamps.__setitem__(step, usage()))
    a, b = stamps[warm], stamps[warm + steps]
    result["update"] = {"ms": (b[0] - a[0]) / steps * 1000, "page_faults": (b[1] - a[1]) / steps}
    return result


def report(result: dict[str, Any]) -> str:
    from flexlam_rl.tables import markdown_table

    rows = [[r["calls"], "keep_freed_memory" if r["keep_freed_memory"] else "glibc default", f"{r['check']['wall_s']:.2f}",
             f"{r['check']['user_s']:.2f}", f"{r['check']['sys_s']:.2f}", f"{r['check']['page_faults']:,.0f}",
             f"{r['update']['ms']:.0f}", f"{r['update']['page_faults']:,.0f}"] for r in result["rows"]]
    return "\n".join([f"# A games LAM's held-out check ({result['threads']} torch threads, torch {result['versions']['torch']})", "",
                      f"Command: `{result['command']}`", "",
                      "One check: 512 transitions scored at every budget, 256 decoded with own, shuffled and null tokens; "
                      "one update: batch 32. Medians of the rounds.", "",
                      markdown_table(HEADER, rows), ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/eval_memory"))
    parser.add_argument("--child", nargs=2, metavar=("CALLS", "KEEP"), help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1] == "1", args.rounds, args.threads, args.root)))
        return
    from flexlam_rl.bench.report import versions
    from flexlam_rl.checkpoint import atomic_write_bytes, atomic_write_json

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for calls, keep in SETTINGS:
            out = subprocess.run([sys.executable, __file__, "--child", calls, str(int(keep)), "--rounds", str(args.rounds),
                                  "--threads", str(args.threads), "--root", tmp], capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"  {calls}, keep_freed_memory={keep}: check {rows[-1]['check']['wall_s']:.2f} s", flush=True)
    result = {"command": "python benchmarks/eval_memory.py " + " ".join(sys.argv[1:]), "threads": args.threads, "rounds": args.rounds,
              "rows": rows, "versions": {**versions(), "machine": platform.processor() or platform.machine()}}
    print(report(result))
    atomic_write_json(args.out / "results.json", result)
    atomic_write_bytes(args.out / "results.md", report(result).encode())


if __name__ == "__main__":
    main()
