"""What the tokens encode on the variation map's distractor tasks (run after ``flexlam-bench scale=variation``).

    python benchmarks/variation_probes.py [--seed 0] [--episodes 60] [--out benchmarks/results/variation]

For each suite of scale=variation whose task has action-independent state (distractor dots, flicker,
moving obstacles), the benchmark's FlexLAM and fixed LAMs of ``--seed`` (from its model cache) are
probed (:mod:`flexlam_rl.probes`): from the first k tokens to the true action and to the distractors'
change over the step, on fresh held-out rollouts. Writes ``token_probes.json`` and ``token_probes.png``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from flexlam_rl.bench.run import seed_models
from flexlam_rl.bench.spec import load_scale
from flexlam_rl.checkpoint import atomic_write_json
from flexlam_rl.probes import probe_rollouts, token_probe_figure, token_probes
from flexlam_rl.sources import cache_root

DISTRACTOR_SUITES = ("reach_d1", "reach_d3f", "minigrid_dynamic")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--episodes", type=int, default=60)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/variation"))
    args = parser.parse_args()
    bench = load_scale("variation")
    results = {}
    for suite in bench.suites:
        if suite.name not in DISTRACTOR_SUITES:
            continue
        models, _ = seed_models(bench, suite, args.seed, cache_root() / "bench", lambda msg, n=suite.name: print(f"  [{n}] {msg}"))
        fixed = {f"fixed K={name.split('_')[1]}": lam for name, lam in models.items() if name != "flexlam"}
        rollouts = probe_rollouts(suite.tasks[0], models["flexlam"], args.episodes)
        results[suite.name] = token_probes(models["flexlam"], rollouts, fixed, budgets=bench.budgets)
        print(suite.name, results[suite.name]["flexlam"], flush=True)
    atomic_write_json(args.out / "token_probes.json", {"command": f"python benchmarks/variation_probes.py --seed {args.seed} "
                                                       f"--episodes {args.episodes}", "seed": args.seed, "suites": results})
    token_probe_figure(results, args.out / "token_probes.png")


if __name__ == "__main__":
    main()
