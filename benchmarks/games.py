"""LAMs on Atari and Procgen (flexlam_rl.bench.games): the recipe ablation, the suite, PPO and plateau runs.

    python benchmarks/games.py recipe [--games breakout pong procgen-coinrun] [--variants base changed ...] [--steps 3000]
    python benchmarks/games.py suite [--variant norm_pool] [--games ...] [--seeds 0] [--steps 3000]
    python benchmarks/games.py ppo [--variant norm_pool] [--games breakout procgen-coinrun] [--timesteps 100000]
    python benchmarks/games.py plateau [--games ...] [--seeds 0]

Variants: configs/games/variants.yaml. Outputs (default): benchmarks/results/games_recipe, games (each variant's
suite under variants/<variant>, the shipped one also at the top), games_plateau. Every run is saved under
<out>/per_run as it finishes, so a rerun resumes; reports are rebuilt from everything saved.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from flexlam_rl.bench import games
from flexlam_rl.bench.experiment import Experiment

OUT = {"recipe": "games_recipe", "suite": "games", "ppo": "games", "plateau": "games_plateau"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=list(OUT))
    parser.add_argument("--games", nargs="+", choices=sorted(games.GAME_DATA))
    parser.add_argument("--variants", nargs="+", default=[v for v, spec in games.VARIANTS.items() if not spec.retired_at],
                        choices=list(games.VARIANTS))
    parser.add_argument("--variant", default=games.SHIPPED, choices=list(games.VARIANTS), help="suite / ppo: the recipe to run")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--timesteps", type=int, default=100_000, help="ppo: env steps per agent")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--report-only", action="store_true", help="rebuild the reports from the runs saved under --out")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    exp = Experiment(args.out or Path("benchmarks/results") / OUT[args.mode], "benchmarks/games.py", units="per_run")
    run = not args.report_only
    if args.mode == "plateau":
        for game in (args.games or games.SUITE) if run else ():
            for seed in args.seeds:
                exp.unit(f"{game}_s{seed}", lambda g=game, s=seed: games.plateau_run(g, s))
        result, text = games.plateau_report(exp, exp.commands(args.report_only), Path("benchmarks/results/throughput_games/results.json"))
        exp.write(result, text)
    elif args.mode == "recipe":
        runs = games.run_all(exp, (args.games or games.RECIPE_GAMES) if run else [], args.variants, args.seeds, args.steps)
        result, text = games.recipe_report(runs, exp.commands(args.report_only))
        exp.write(result, text)
    else:
        chosen = args.games or (games.SUITE if args.mode == "suite" else games.PPO_GAMES)
        runs = games.run_all(exp, chosen if run else [], [args.variant], args.seeds, args.steps)
        ppo = (games.ppo_runs(exp, runs, chosen, args.variant, args.timesteps) if args.mode == "ppo"
               else games.saved_ppo_runs(exp, args.variant))
        report = exp.out / "variants" / args.variant  # every variant's suite keeps its report; the shipped one is also <out>
        result, text = games.suite_report(runs, args.variant, args.steps, ppo, exp.commands(args.report_only, where=report))
        exp.write(result, text, where=[report, exp.out] if args.variant == games.SHIPPED else [report])
    print(text)
    print(json.dumps({"saved": str(exp.out)}))


if __name__ == "__main__":
    main()
