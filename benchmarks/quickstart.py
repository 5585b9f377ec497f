"""The README's first Quickstart command, exactly as written, on a fresh clone with a fresh HOME: how long it takes
on this machine (install included) and what it prints.

    python benchmarks/quickstart.py [--out benchmarks/results/quickstart]

The README promises the command fits in 10 minutes on 2 cores, install included; this is the measurement behind that
sentence and behind the sample output in docs/getting-started.md (tests/test_docs.py checks both against the files
written here). It clones the committed HEAD (uncommitted changes are not measured), so commit first. Run it on idle
cores: anything else running makes the time meaningless.

Writes ``results.json`` (command, commit, the quickstart config's sha256, machine, wall time, the quickstart's own
stage times, install = the rest) and ``output.txt`` (what the command printed to stdout from its first stage on, the
clone's path replaced by ``/path/to``; tqdm's bars go to stderr and are left out, SB3's PPO bar prints to stdout and
stays).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from flexlam_rl.checkpoint import atomic_write_bytes, atomic_write_json
from flexlam_rl.cli.quickstart import parse_stage_times

ROOT = Path(__file__).resolve().parents[1]
LIMIT_S = 600  # the README's bound: 10 minutes on 2 cores, install included


def readme_command(readme: str, index: int = 0) -> str:
    """Command ``index`` of the first fenced block under ``## Quickstart`` (the way .ci/run reads the second)."""
    section = readme.split("\n## Quickstart", 1)[1]
    block = re.search(r"```[a-z]*\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")][index]


def cpu_model() -> str:
    """The CPU's model name (Linux), else what platform knows: times are only comparable on one machine."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def config_digest(repo: Path) -> str:
    """sha256 of ``configs/quickstart.yaml`` and every group file its defaults list composes (``bc: default`` ->
    ``configs/bc/default.yaml``, ...): the docs' figures hold for the default that was measured, and a test asks for a
    new measurement when any of it changes."""
    import yaml

    main = repo / "configs/quickstart.yaml"
    files = [main] + [repo / "configs" / group / f"{name}.yaml" for entry in yaml.safe_load(main.read_text())["defaults"]
                      if isinstance(entry, dict) for group, name in entry.items() if group != "_self_"
                      and (repo / "configs" / group / f"{name}.yaml").is_file()]
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def printed_stages(stdout: str, clone: Path) -> str:
    """What the quickstart printed from its first stage on, with the clone's path made machine-independent."""
    start = stdout.find("=== collect ===")
    if start < 0:
        raise ValueError("the command printed no '=== collect ===': it did not reach the quickstart (see the log)")
    return stdout[start:].replace(str(clone), "/path/to")


def measure(repo: Path, work: Path) -> dict[str, Any]:
    clone, home = work / "clone", work / "home"
    home.mkdir()
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, check=True, capture_output=True, text=True).stdout.strip()
    command = readme_command((clone / "README.md").read_text())
    env = {key: value for key, value in os.environ.items()
           if key not in ("VIRTUAL_ENV", "MINARI_DATASETS_PATH", "FLEXLAM_RL_CACHE", "PYTHONPATH")}
    env["HOME"] = str(home)
    print(f"+ {command}  (in a fresh clone of {commit[:7]}, HOME={home})", flush=True)
    start = time.perf_counter()
    run = subprocess.run(["bash", "-c", command], cwd=clone, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if run.returncode != 0:
        sys.stderr.write(run.stdout[-4000:] + run.stderr[-4000:])
        raise SystemExit(f"the README's first Quickstart command failed (exit {run.returncode}) after {wall:.0f} s")
    stages = parse_stage_times(run.stdout)
    return {"command": command, "commit": commit, "config_sha256": config_digest(clone), "rc": run.returncode, "wall_s": wall,
            "install_s": wall - stages["total"], "stage_s": stages, "limit_s": LIMIT_S, "within_limit": wall <= LIMIT_S,
            "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version()},
            "output": printed_stages(run.stdout, clone)}


def report(result: dict[str, Any]) -> str:
    rows = [("install", result["install_s"])] + [(k, v) for k, v in result["stage_s"].items() if k != "total"]
    lines = [f"README Quickstart command 1 on {result['machine']['cpu']} ({result['machine']['cores']} cores), "
             f"commit {result['commit'][:7]}:", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {name} | {seconds:.0f} |" for name, seconds in rows]
    lines += [f"| **total** | **{result['wall_s']:.0f}** ({result['wall_s'] / 60:.1f} min; limit {LIMIT_S // 60} min) |"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=ROOT, help="the git repository whose HEAD is cloned")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/quickstart")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="flexlam-quickstart-") as tmp:
        result = measure(args.repo.resolve(), Path(tmp))
    text = report(result)
    print(text)
    atomic_write_json(args.out / "results.json", {k: v for k, v in result.items() if k != "output"})
    atomic_write_bytes(args.out / "output.txt", result["output"].encode())
    atomic_write_bytes(args.out / "results.md", text.encode())
    if not result["within_limit"]:
        print(f"over the README's {LIMIT_S // 60}-minute bound on this machine", file=sys.stderr)


if __name__ == "__main__":
    main()
