"""The one experiment harness behind every script under ``benchmarks/``: a run record (command, code, versions),
one JSON file per unit of work, and atomic result files.

Why one: a benchmark outlives a session only through what it saved, and a number is only a finding with the command,
the commit and the versions that made it. Written once here, a script says what its units are and how to report
them; resuming, recording and writing cannot drift between scripts.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..checkpoint import atomic_write_bytes, atomic_write_json, read_json

MAX_RESULT_BYTES = 2**24  # results.json of the largest suites (per-run curves, confusion matrices) stay far below


def versions() -> dict[str, str]:
    """The versions a result was made with (stored beside every benchmark result)."""
    import gymnasium
    import minari
    import stable_baselines3
    import torch

    from .._version import __version__

    return {"flexlam_rl": __version__, "torch": torch.__version__, "gymnasium": gymnasium.__version__,
            "minari": minari.__version__, "stable_baselines3": stable_baselines3.__version__,
            "python": platform.python_version(), "platform": platform.platform()}


def code_record() -> dict[str, Any]:
    """The code a result was made with: the commit of the checkout this package runs from and whether its tree was
    clean (uncommitted changes to tracked files); ``commit`` is None outside a git checkout (an installed wheel)."""
    here = Path(__file__).resolve().parent

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(here), *args], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "clean": None if commit is None else status == ""}


def machine() -> dict[str, Any]:
    """The CPU a unit ran on: training is bit-for-bit repeatable for one code version, thread count and CPU kind only."""
    model = platform.processor() or platform.machine()
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import torch

    # the vector instructions torch's CPU kernels dispatch to (AVX2, AVX512, ...): what changes the last bits
    return {"cpu": model, "cores": os.cpu_count(), "capability": torch.backends.cpu.get_cpu_capability()}


def jsonable(obj: Any) -> Any:
    """Plain JSON types (numpy arrays and scalars become lists and numbers)."""
    return json.loads(json.dumps(obj, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


@dataclass
class Experiment:
    """A benchmark's output folder.

    ``out/<units>/<name>.json`` holds one finished unit of work each (written atomically, with the code that made
    it), so a run cut by a session's end resumes where it stopped; ``write`` puts ``results.json`` (the run record
    plus the result) and ``results.md`` (and figures) beside them, each atomically.
    """

    out: Path
    script: str  # as the command line names it: ``benchmarks/<name>.py``
    argv: list[str] = field(default_factory=lambda: sys.argv[1:])
    units: str = "units"  # the folder of unit files (older results: ``per_run``)

    def __post_init__(self) -> None:
        self.out = Path(self.out)

    @property
    def command(self) -> str:
        return shlex.join(["python", self.script, *self.argv])

    def record(self) -> dict[str, Any]:
        """What made this run: the command, the code and the versions."""
        return {"command": self.command, "code": code_record(), "versions": versions()}

    def unit_path(self, name: str) -> Path:
        return self.out / self.units / f"{name}.json"

    def unit(self, name: str, compute: Callable[[], Mapping[str, Any]], *, log: bool = True) -> dict[str, Any]:
        """The saved unit ``name``, or ``compute()`` saved as it (with the code and the machine that made it)."""
        path = self.unit_path(name)
        if path.is_file():
            return read_json(path, "unit", MAX_RESULT_BYTES)
        if log:
            print(f"{name} ...", flush=True)
        value = jsonable({**compute(), "code": code_record(), "machine": machine()})
        atomic_write_json(path, value)
        return value

    def saved(self, pattern: str = "*.json") -> list[dict[str, Any]]:
        """Every saved unit whose file name matches ``pattern``, by file name."""
        return [read_json(p, "unit", MAX_RESULT_BYTES) for p in sorted((self.out / self.units).glob(pattern))]

    def commands(self, report_only: bool = False, where: Path | None = None) -> list[str]:
        """Every command that added units to this folder (each invocation adds its own; a report-only rebuild adds
        none), read from the previous ``results.json`` in ``where`` (default: ``out``)."""
        path = (where or self.out) / "results.json"
        previous = read_json(path, "results", MAX_RESULT_BYTES) if path.is_file() else {}
        commands = list(previous.get("commands", [previous["command"]] if "command" in previous else []))
        return commands if report_only or self.command in commands else [*commands, self.command]

    def write(self, result: Mapping[str, Any], markdown: str, where: Iterable[Path] | None = None) -> dict[str, Any]:
        """``results.json`` (``result`` and, under ``report``, the record of the run that wrote it: a report rebuilt
        from saved units records its own command and code, each unit keeps the code that made it), ``results.md``
        atomically, into ``out`` (or each folder of ``where``). Figures are each script's own (``checkpoint.atomic_path``)."""
        full = jsonable({**result, "report": self.record()})
        for folder in where or [self.out]:
            atomic_write_json(Path(folder) / "results.json", full)
            atomic_write_bytes(Path(folder) / "results.md", markdown.encode())
        return full
