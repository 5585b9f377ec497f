"""What the benchmark costs before and after a change: ``scale=smoke`` and one ``scale=default`` (suite, seed) job.

    python benchmarks/bench_cost.py --before ccb1461 [--suite minigrid] [--seed 0] [--threads 2]
                                    [--out benchmarks/results/bench_cost]

``--before`` is a commit; its code is installed (not editable) into a venv of its own beside a git worktree, and
the current checkout is the "after". Both commands run one after the other on the same machine, in one
invocation, interleaved smoke before / smoke after / job before / job after, each with a fresh model and
frame cache (``FLEXLAM_RL_CACHE``) and out dir, on data collected beforehand (shared Minari datasets), so the
wall times compare the benchmark's own work. Nothing else should run meanwhile. The claims of each pair are
compared: where the computation is the same, the results must be identical.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from flexlam_rl.checkpoint import atomic_write_bytes, atomic_write_json, read_json
from flexlam_rl.tables import markdown_table

REPO = Path(__file__).resolve().parents[1]


def run(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, env=env, cwd=cwd)


def before_install(commit: str, work: Path) -> Path:
    """A worktree at ``commit`` and a venv with its code installed; returns the venv's ``bin`` folder."""
    tree, venv = work / "tree", work / "venv"
    if not tree.is_dir():
        run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), commit])
    if not (venv / "installed").is_file():
        run([sys.executable, "-m", "venv", str(venv)])
        run([str(venv / "bin" / "pip"), "install", "-q", "torch==2.13.0"])
        run([str(venv / "bin" / "pip"), "install", "-q", str(tree)])
        (venv / "installed").touch()
    return venv / "bin"


def bench(bin_dir: Path, args: list[str], out: Path, threads: int) -> float:
    """Wall seconds of one ``flexlam-bench`` run with its own caches."""
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "FLEXLAM_RL_CACHE": str(out / "cache"), "OMP_NUM_THREADS": str(threads)}
    cmd = [str(bin_dir / "flexlam-bench"), *args, f"threads={threads}", f"out_dir={out / 'report'}", "hydra.run.dir=."]
    start = time.perf_counter()
    run(cmd, env=env, cwd=out)
    return time.perf_counter() - start


def scores(out: Path) -> dict[str, Any]:
    """Every metric value of every saved (suite, seed): what must not move when only the cost changes (a
    one-seed job has no claims to compare; wall times and learning curves are left out, and so are metrics
    a run did not score, which newer code lists as empty)."""
    out_scores = {}
    for path in sorted((out / "report" / "seeds").glob("*.json")):
        metrics = {k: v for k, v in read_json(path, "seed results", 2**26)["metrics"].items() if k != "models"}
        metrics["values"] = {view: {m: v for m, v in named.items() if v} for view, named in metrics["values"].items()}
        out_scores[path.name] = metrics
    return out_scores


def compare(result: dict[str, Any]) -> dict[str, bool]:
    return {name: bool(scores(Path(result["dirs"][f"{name}_before"]))) and
            scores(Path(result["dirs"][f"{name}_before"])) == scores(Path(result["dirs"][f"{name}_after"]))
            for name in ("smoke", "job")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="the commit to compare against")
    parser.add_argument("--suite", default="minigrid")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "flexlam-bench-cost")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bench_cost")
    parser.add_argument("--compare-only", action="store_true", help="recompare the saved run's output dirs and rewrite its report")
    args = parser.parse_args()
    if args.compare_only:
        result = read_json(args.out / "results.json", "bench cost results")
        latest = {f"{n}_{side}": str(max(args.work.glob(f"{n}_{side}_*"))) for n in ("smoke", "job") for side in ("before", "after")}
        result.pop("identical_claims", None)  # the first version compared claims, which a one-seed job has none of
        write({**result, "dirs": result.get("dirs", latest),
               "compared_by": "python benchmarks/bench_cost.py " + " ".join(sys.argv[1:])}, args.out)
        return
    after_bin = Path(sys.executable).parent
    before_bin = before_install(args.before, args.work)
    job = ["scale=default", f"scale.seeds=[{args.seed}]", f"only=[{args.suite}]"]
    # data first (shared Minari datasets), so no timed run collects any
    warm = args.work / "warm"
    bench(after_bin, ["scale=smoke"], warm / "smoke", args.threads)
    code = (f"from flexlam_rl.bench.spec import load_scale; from flexlam_rl.bench.run import collect_suite; "
            f"cfg = load_scale('default'); [collect_suite(s, cfg.data_seed) for s in cfg.suites if s.name == '{args.suite}']")
    run([str(after_bin / "python"), "-c", code])
    wall: dict[str, Any] = {}
    for name, scale_args in (("smoke", ["scale=smoke"]), ("job", job)):
        for side, bin_dir in (("before", before_bin), ("after", after_bin)):
            out = args.work / f"{name}_{side}_{time.strftime('%H%M%S')}"
            wall[f"{name}_{side}_s"] = bench(bin_dir, scale_args, out, args.threads)
            wall[f"{name}_{side}_dir"] = out
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    result = {
        "command": "python benchmarks/bench_cost.py " + " ".join(sys.argv[1:]),
        "before_commit": args.before, "after_commit": head, "threads": args.threads, "job": " ".join(job),
        **{k: round(v, 1) for k, v in wall.items() if k.endswith("_s")},
        "smoke_ratio": wall["smoke_after_s"] / wall["smoke_before_s"], "job_ratio": wall["job_after_s"] / wall["job_before_s"],
        "dirs": {k[:-4]: str(v) for k, v in wall.items() if k.endswith("_dir")},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
    }
    write(result, args.out)


def write(result: dict[str, Any], out: Path) -> None:
    """results.json / .md, with whether each pair scored identically."""
    same = result["identical_scores"] = compare(result)
    atomic_write_json(out / "results.json", result)
    rows = [[name, f"{result[f'{name}_before_s']:.0f}", f"{result[f'{name}_after_s']:.0f}",
             f"{result[f'{name}_ratio']:.2f}", "yes" if same[name] else "**no**"] for name in ("smoke", "job")]
    text = "\n".join([f"# Benchmark cost: {result['before_commit']} -> {result['after_commit']}", "", f"`{result['command']}`", "",
                      f"{result['threads']} torch threads, one run after the other on an otherwise idle machine; job: "
                      f"`{result['job']}`. Same scores: every metric of every saved (suite, seed), wall times aside.",
                      "", markdown_table(["run", "before s", "after s", "after / before", "same scores"], rows), ""])
    atomic_write_bytes(out / "results.md", text.encode())
    print(text)
    print(json.dumps({"saved": str(out)}))


if __name__ == "__main__":
    main()
