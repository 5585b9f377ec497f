"""Every script in examples/ runs as a user would run it (tiny sizes, private roots)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
EXPECTED = {  # a line each example prints when it did its job
    "latent_sb3.py": "PPO in latent space saved to",
    "own_minari_dataset.py": "held-out MSE per budget",
    "adaptive_budgets.py": "tokens per step at token_cost=",
    "inspect_lam.py": "| controllability |",
}


def test_every_example_is_listed() -> None:
    assert {p.name for p in EXAMPLES.glob("*.py")} == set(EXPECTED)


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_example_runs(script: str, isolated_roots: Path, tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, str(EXAMPLES / script), "--out", str(tmp_path / "out")], cwd=tmp_path,
                         env=os.environ.copy(), capture_output=True, text=True, timeout=580)
    assert out.returncode == 0, out.stderr[-3000:]
    assert EXPECTED[script] in out.stdout
