"""Multi-prefix updates: FlexLAM with m = 1 vs m > 1 prefix lengths per example, trained to a plateau.

    python benchmarks/prefix_samples.py [--suite reach] [--seeds 0 1 2] [--samples 1 4] [--out benchmarks/results/prefix_samples]

``train.prefix_samples=m`` runs the encoder once and the decoder on m stratified prefix lengths per
example, so every slot gets a gradient in every update. This trains the default benchmark's FlexLAM
(same data, model and plateau rule as ``scale=default``) once per m in one process, in a fresh cache,
one after the other, and reports per m: updates and wall seconds to the stop, whether it plateaued,
training FLOPs, the final held-out error per budget k (every held-out transition), and each run's
error at the wall time where the faster-stopping run stopped (equal wall time, from the curves).
"""

from __future__ import annotations

import argparse
import platform
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from flexlam_rl import __version__
from flexlam_rl.bench.cache import train_cached
from flexlam_rl.bench.run import collect_suite, lam_variants, suite_data
from flexlam_rl.bench.spec import load_scale
from flexlam_rl.checkpoint import atomic_write_bytes, atomic_write_json
from flexlam_rl.evaluate.reconstruction import reconstruction_by_budget
from flexlam_rl.pretrain.train import TrainConfig, update_flops
from flexlam_rl.tables import markdown_table


def at_wall(curve: list[dict], seconds: float) -> dict[str, float]:
    """The last held-out check at or before ``seconds`` of training (the curve's per-k errors)."""
    before = [p for p in curve if p["wall_s"] <= seconds]
    return {str(k): float(v) for k, v in (before or curve[:1])[-1]["mse"].items()}


def train_runs(bench, suite, seed: int, samples: list[int], max_steps: int | None) -> dict[int, dict]:
    """One seed: the FlexLAM trained once per m, in a fresh cache, one after the other (same conditions)."""
    ids = collect_suite(suite, bench.data_seed)
    data = suite_data(bench, [i for task in suite.tasks for i in ids[task].values()])
    lam_cfg = lam_variants(bench, data.obs_shape, data.is_image, data.preprocess)["flexlam"]
    runs = {}
    with tempfile.TemporaryDirectory() as cache:
        for m in samples:
            train_cfg = replace(TrainConfig(**{**bench.train, "seed": seed, "progress": False}), prefix_samples=m)
            if max_steps is not None:
                train_cfg = replace(train_cfg, max_steps=max_steps)
            trained = train_cached(data, lam_cfg, train_cfg, Path(cache))
            final = reconstruction_by_budget(trained.lam, data.heldout)["mse"]
            info = trained.info
            runs[m] = {"updates": info["updates"], "wall_s": info["wall_s"], "plateaued": info["plateaued"],
                       "flops": info["updates"] * update_flops(lam_cfg, data, train_cfg),
                       "final_mse": {str(k): float(v) for k, v in final.items()}, "curve": info["curve"],
                       "heldout": len(data.heldout)}
            print(f"seed {seed} m={m}: {info['updates']} updates, {info['wall_s']:.0f} s, plateaued={info['plateaued']}", flush=True)
    equal_wall = min(r["wall_s"] for r in runs.values())
    for run in runs.values():
        run["equal_wall_s"] = equal_wall
        run["mse_at_equal_wall"] = at_wall(run["curve"], equal_wall)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="reach")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--samples", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-steps", type=int, default=None, help="update cap (default: the scale's; small for a smoke check)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/prefix_samples"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bench = load_scale("default")
    suite = next((s for s in bench.suites if s.name == args.suite), None)
    if suite is None:
        parser.error(f"--suite {args.suite}: scale=default has {[s.name for s in bench.suites]}")
    runs = {seed: train_runs(bench, suite, seed, args.samples, args.max_steps) for seed in args.seeds}
    ks, base = [str(k) for k in bench.budgets], args.samples[0]

    def ratio(m: int, key: str, k: str) -> float:  # geometric mean over seeds of m's error / the first m's
        return float(np.exp(np.mean([np.log(runs[s][m][key][k] / runs[s][base][key][k]) for s in args.seeds])) - 1)

    rows = [[f"seed {s}", f"m={m}", r["updates"], f"{r['wall_s']:.0f}", "yes" if r["plateaued"] else "no (cap)",
             f"{r['flops'] / 1e12:.2f}", *(f"{r['final_mse'][k]:.2e}" for k in ks),
             *(f"{r['mse_at_equal_wall'][k]:.2e} @{r['equal_wall_s']:.0f}s" for k in ks)]
            for s in args.seeds for m, r in runs[s].items()]
    rows += [[f"all (vs m={base})", f"m={m}", f"{np.mean([runs[s][m]['updates'] for s in args.seeds]):.0f}",
              f"{np.mean([runs[s][m]['wall_s'] for s in args.seeds]):.0f}",
              f"{sum(runs[s][m]['plateaued'] for s in args.seeds)}/{len(args.seeds)}",
              f"{np.mean([runs[s][m]['flops'] for s in args.seeds]) / 1e12:.2f}",
              *(f"{ratio(m, 'final_mse', k):+.0%}" for k in ks), *(f"{ratio(m, 'mse_at_equal_wall', k):+.0%}" for k in ks)]
             for m in args.samples]
    table = markdown_table(["seed", "prefix samples", "updates", "wall s", "plateaued", "TFLOP",
                            *(f"final k={k}" for k in ks), *(f"k={k} at equal wall time" for k in ks)], rows)
    command = (f"python benchmarks/prefix_samples.py --suite {args.suite} --seeds {' '.join(map(str, args.seeds))} "
               f"--samples {' '.join(map(str, args.samples))} --threads {args.threads}"
               + (f" --max-steps {args.max_steps}" if args.max_steps is not None else ""))
    header = (f"FlexLAM on `{args.suite}` (scale=default data, model and plateau rule), {args.threads} thread(s). Final "
              f"error on all {runs[args.seeds[0]][base]['heldout']} held-out transitions; equal wall time: each run's "
              f"512-transition check at the wall time where the faster run of that seed stopped. `all` rows: mean "
              f"updates / wall / FLOPs, and the per-k error change against m={base} (geometric mean over seeds).\n\n"
              f"Command: `{command}`\n\n")
    print(table)
    atomic_write_json(args.out / "results.json", {"command": command, "suite": args.suite, "seeds": args.seeds,
                                                  "threads": args.threads,
                                                  "runs": {str(s): {str(m): r for m, r in by_m.items()} for s, by_m in runs.items()},
                                                  "versions": {"flexlam_rl": __version__, "torch": torch.__version__,
                                                               "python": platform.python_version(),
                                                               "numpy": np.__version__}})
    atomic_write_bytes(args.out / "results.md", (header + table + "\n").encode())


if __name__ == "__main__":
    main()
