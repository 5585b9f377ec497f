"""Which transitions to label (flexlam_rl.bench.labels): translator quality against label count, per label-selection
strategy, on the benchmark's FlexLAMs.

    python benchmarks/label_selection.py [--scale default] [--seeds 0 1 2 ...] [--threads 1] [--out benchmarks/results/labels]
    python benchmarks/label_selection.py --cost --seeds 0 --threads 1   # each strategy's selection time, run alone

Each (suite, seed) is saved under <out>/per_seed as it finishes; the report is rebuilt from everything saved.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from flexlam_rl.bench import labels
from flexlam_rl.bench.experiment import Experiment
from flexlam_rl.bench.spec import load_scale
from flexlam_rl.checkpoint import atomic_write_json, read_json
from flexlam_rl.data.sources import cache_root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="default")
    parser.add_argument("--seeds", type=int, nargs="+")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--suites", nargs="+", help="only these suites of the scale (default: all)")
    parser.add_argument("--cost", action="store_true",
                        help="time each strategy's selection on the first seed instead (writes cost.json; run it alone)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/labels"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bench = load_scale(args.scale)
    unknown = set(args.suites or []) - {s.name for s in bench.suites}
    if unknown:
        parser.error(f"--suites {sorted(unknown)}: scale {args.scale!r} has the suites {[s.name for s in bench.suites]}")
    suites = [s for s in bench.suites if not args.suites or s.name in args.suites]
    cache = cache_root() / "bench"
    exp = Experiment(args.out, "benchmarks/label_selection.py", units="per_seed")
    command = exp.command
    if args.cost:  # the results keep the command that made the scores; cost.json records its own
        seed = (args.seeds or bench.seeds)[0]
        rows = [row for suite in suites for row in labels.measure_cost(bench, suite, seed, cache)]
        atomic_write_json(args.out / "cost.json", {"command": command, "rows": rows})
        if (args.out / "results.json").is_file():
            command = read_json(args.out / "results.json", "results")["command"]
    else:
        names = {f"{s.name}_seed{n}": (s, n) for s in suites for n in args.seeds or bench.seeds}
        if all(exp.unit_path(name).is_file() for name in names) and (args.out / "results.json").is_file():
            command = read_json(args.out / "results.json", "results")["command"]  # a rebuild: the scores' command stays
        for name, (suite, seed) in names.items():
            exp.unit(name, lambda s=suite, n=seed: labels.run_seed(bench, s, n, cache))
    cost_path = args.out / "cost.json"
    result = {"command": command, "scale": args.scale, "fractions": labels.FRACTIONS, **labels.aggregate(exp.saved()),
              "cost": read_json(cost_path, "cost") if cost_path.is_file() else None}
    labels.plot(result, args.out / "accuracy_vs_labels.png")
    text = labels.report(result, args.scale)
    exp.write(result, text)
    print(text)


if __name__ == "__main__":
    main()
