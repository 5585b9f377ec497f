"""The benchmark pipeline at smoke scale (checks outputs, not the claim) and its aggregation."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flexlam_rl.bench import BenchConfig, SuiteSpec, aggregate, mean_se


def _bench(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flexlam_rl.cli.bench", *args], cwd=cwd, env=os.environ.copy(),
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_smoke_scale_writes_every_report(tmp_path: Path) -> None:
    out = tmp_path / "smoke"
    run = _bench("scale=smoke", f"out_dir={out}", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    result = json.loads((out / "results.json").read_text())
    assert result["seeds_done"] == {"minigrid": [0, 1], "reach": [0, 1]}
    assert set(result["summary"]["minigrid"]) == {"recon", "align", "bc_return", "ppo_return"}
    assert set(result["summary"]["reach"]) == {"recon", "align", "bc_return"}  # no PPO on reach
    assert set(result["summary"]["minigrid"]["align"]) == {"standard", "low_return"}
    cells = result["summary"]["minigrid"]["recon"]["any"]
    assert set(cells) == {"flexlam", "fixed"} and set(cells["flexlam"]) == {"1", "2", "4", "8"}
    assert all(isinstance(c["holds"], bool) for c in result["claims"]) and result["claims"]
    assert result["compute"]["minigrid"]["models_replaced"] == 4 and result["compute"]["minigrid"]["fixed_total_train_s"] > 0
    assert len(result["code_usage"]["minigrid"]["flexlam"]) == 8 and len(result["code_usage"]["minigrid"]["fixed_2"]) == 2
    assert result["versions"]["torch"] and result["command"].startswith("flexlam-bench")
    md = (out / "results.md").read_text()
    assert "| flexlam |" in md and "claim holds" in md and "Training compute" in md
    assert "| minigrid | latent BC return (higher is better) | standard |" in md  # the one-table summary
    assert (out / "budget_curves.png").stat().st_size > 10_000
    assert {p.name for p in (out / "gifs").iterdir()} >= {"minigrid_flexlam_k2.gif", "minigrid_fixed_k2.gif"}

    again = _bench("scale=smoke", f"out_dir={out}", cwd=tmp_path)  # cached: only re-aggregates
    assert again.returncode == 0 and again.stdout.count("already done") == 4
    report = _bench("scale=smoke", f"out_dir={out}", "report_only=true", cwd=tmp_path)
    assert report.returncode == 0 and "claim holds in" in report.stdout


@pytest.mark.slow
def test_unknown_suite_and_missing_results_are_clear_errors(tmp_path: Path) -> None:
    run = _bench("scale=smoke", "only=[nope]", f"out_dir={tmp_path / 'x'}", cwd=tmp_path)
    assert run.returncode == 2 and "unknown suites ['nope']" in run.stderr
    run = _bench("scale=smoke", "report_only=true", f"out_dir={tmp_path / 'empty'}", cwd=tmp_path)
    assert run.returncode == 2 and "No finished seeds" in run.stderr


def _run(recon_flex: float, recon_fixed: float) -> dict:
    per_k = lambda v: {"1": v, "2": v}  # noqa: E731
    return {"recon": {"any": {"flexlam": per_k(recon_flex), "fixed": per_k(recon_fixed)}},
            "code_usage": {"flexlam": [2.0, 3.0]}, "compute": {"flexlam": {"wall_time_s": 10.0},
                                                              "fixed_1": {"wall_time_s": 9.0}, "fixed_2": {"wall_time_s": 9.5}}}


def test_aggregation_and_claim_check() -> None:
    cfg = BenchConfig(name="t", suites=[SuiteSpec("s", ["cartpole"], 32, {}, "cartpole")], seeds=[0, 1, 2],
                      budgets=[1, 2], num_tokens=2)
    stats = mean_se([1.0, 2.0, 3.0])
    assert stats["mean"] == 2.0 and stats["se"] == pytest.approx(1 / math.sqrt(3))
    within_se = aggregate({"s": {0: _run(1.0, 1.1), 1: _run(1.05, 0.9), 2: _run(1.0, 1.0)}}, cfg)
    assert all(c["holds"] for c in within_se["claims"])  # flex 1.017 <= fixed 1.0 + SE 0.058
    worse = aggregate({"s": {0: _run(2.0, 1.0), 1: _run(2.1, 1.1), 2: _run(2.2, 0.9)}}, cfg)
    assert not any(c["holds"] for c in worse["claims"])  # lower is better for recon: FlexLAM clearly worse
    assert worse["compute"]["s"]["fixed_over_flexlam"] == pytest.approx(1.85)


def test_dataset_ids_change_with_what_is_collected() -> None:
    from flexlam_rl.bench import SuiteSpec
    from flexlam_rl.sources import validate_dataset_id

    small = SuiteSpec("s", ["minigrid-empty"], 32, {"noisy": {"episodes": 3, "epsilon": 0.5}}, "minigrid-empty")
    big = SuiteSpec("s", ["minigrid-empty"], 32, {"noisy": {"episodes": 30, "epsilon": 0.5}}, "minigrid-empty")
    ids = {small.dataset_id("minigrid-empty", "noisy"), big.dataset_id("minigrid-empty", "noisy")}
    assert len(ids) == 2 and all(validate_dataset_id(i) for i in ids)
