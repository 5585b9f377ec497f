"""What the tokens encode on the variation map's distractor tasks (run after ``flexlam-bench scale=variation``).

    python benchmarks/variation_probes.py [--seeds 0 1 2] [--episodes 60] [--out benchmarks/results/variation]

For each suite of scale=variation whose task has action-independent state (distractor dots, flicker,
moving obstacles), the benchmark's FlexLAM and fixed LAMs of each of ``--seeds`` (from its model cache;
default: the scale's seeds) are probed (:mod:`flexlam_rl.evaluate.probes`): from the first k tokens to the true
action and to the distractors' change over the step, on fresh held-out rollouts (the same rollouts for
every seed's models). Scores are averaged over seeds, with their standard deviation. Writes
``token_probes.json`` and ``token_probes.png``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from flexlam_rl.bench.run import seed_models
from flexlam_rl.bench.spec import load_scale
from flexlam_rl.checkpoint import atomic_write_json
from flexlam_rl.data.sources import cache_root
from flexlam_rl.evaluate.probes import combine_probes, probe_rollouts, token_probe_figure, token_probes

DISTRACTOR_SUITES = ("reach_d1", "reach_d3f", "minigrid_dynamic")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="benchmark seeds (default: the scale's)")
    parser.add_argument("--episodes", type=int, default=60)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/variation"))
    args = parser.parse_args()
    bench = load_scale("variation")
    seeds = args.seeds if args.seeds is not None else list(bench.seeds)
    results, per_seed = {}, {}
    for suite in bench.suites:
        if suite.name not in DISTRACTOR_SUITES:
            continue
        rollouts = None
        per_seed[suite.name] = {}
        for seed in seeds:
            models, _ = seed_models(bench, suite, seed, cache_root() / "bench", lambda msg, n=suite.name: print(f"  [{n}] {msg}"))
            fixed = {f"fixed K={name.split('_')[1]}": lam for name, lam in models.items() if name != "flexlam"}
            if rollouts is None:  # the models of every seed share preprocessing, so one set of rollouts serves all
                rollouts = probe_rollouts(suite.tasks[0], models["flexlam"], args.episodes)
            per_seed[suite.name][seed] = token_probes(models["flexlam"], rollouts, fixed, budgets=bench.budgets)
            print(suite.name, "seed", seed, per_seed[suite.name][seed]["flexlam"], flush=True)
        results[suite.name] = combine_probes(list(per_seed[suite.name].values()))
    command = f"python benchmarks/variation_probes.py --seeds {' '.join(map(str, seeds))} --episodes {args.episodes}"
    atomic_write_json(args.out / "token_probes.json", {"command": command, "seeds": seeds, "suites": results,
                                                       "per_seed": per_seed})
    token_probe_figure(results, args.out / "token_probes.png")


if __name__ == "__main__":
    main()
