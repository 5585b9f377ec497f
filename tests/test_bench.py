"""The benchmark pipeline at smoke scale (checks outputs, not the claim) and its aggregation."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from flexlam_rl.bench import BenchConfig, SuiteSpec, aggregate, mean_se
from flexlam_rl.bench.report import _mean_curves, final_change, models_table


def _bench(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flexlam_rl.cli.bench", *args], cwd=cwd, env=os.environ.copy(),
                          capture_output=True, text=True, timeout=850)


@pytest.mark.slow
@pytest.mark.timeout(900)  # under a minute on an idle 2-core machine; a loaded one can take several
def test_smoke_scale_writes_every_report(tmp_path: Path) -> None:
    out = tmp_path / "smoke"
    run = _bench("scale=smoke", f"out_dir={out}", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    result = json.loads((out / "results.json").read_text())
    assert result["seeds_done"] == {"minigrid": [0, 1], "reach": [0, 1]}
    assert set(result["summary"]["equal_updates"]["minigrid"]) == {"recon", "align", "bc_return", "ppo_return"}
    assert set(result["summary"]["equal_compute"]["minigrid"]) == {"recon", "align", "bc_return"}  # PPO: secondary, one view
    for view in ("equal_updates", "equal_compute"):
        assert set(result["summary"][view]["reach"]) == {"recon", "align", "bc_return"}  # no PPO on reach
    claims = result["claims"]
    assert {(c["view"], c["suite"], c["metric"], c["protocol"]) for c in claims} >= {("equal_updates", "minigrid", "align", "standard")}
    for claim in claims:  # the contract, cell by cell
        assert {"suite", "metric", "protocol", "k", "diff", "ci95", "verdict", "n_seeds"} <= set(claim)
        assert claim["verdict"] in ("better", "tie", "worse") and claim["n_seeds"] == 2
        assert claim["ci95"][0] <= claim["diff"] <= claim["ci95"][1]
    assert sum(result["counts"]["equal_updates"].values()) == sum(1 for c in claims if c["view"] == "equal_updates" and not c["secondary"])
    models = result["models"]["minigrid"]["0"]
    assert set(models) == {"flexlam", "fixed_1", "fixed_2", "fixed_4", "fixed_8"}
    assert all({"updates", "wall_s", "plateaued"} <= set(m) for m in models.values())
    curves = result["learning_curves"]["minigrid"]
    assert set(curves["flexlam"][0]["mse"]) == {"1", "2", "3", "4", "5", "6", "7", "8"} and set(curves["fixed_2"][0]["mse"]) == {"2"}
    assert all({"updates", "wall_s", "mse"} <= set(p) for p in curves["flexlam"])
    assert result["compute"]["minigrid"]["models_replaced"] == 4 and result["compute"]["minigrid"]["fixed_flops"] > 0
    assert len(result["code_usage"]["minigrid"]["flexlam"]) == 8 and len(result["code_usage"]["minigrid"]["fixed_2"]) == 2
    assert result["versions"]["torch"] and result["command"].startswith("flexlam-bench")
    md = (out / "results.md").read_text()
    assert "View `equal_updates`" in md and "View `equal_compute`" in md and "plateaued" in md
    for plot in ("budget_curves.png", "learning_curves.png"):
        assert (out / plot).stat().st_size > 10_000
    assert {p.name for p in (out / "gifs").iterdir()} >= {"minigrid_flexlam_k2.gif", "minigrid_fixed_k2.gif"}

    again = _bench("scale=smoke", f"out_dir={out}", cwd=tmp_path)  # cached: only re-aggregates
    assert again.returncode == 0 and again.stdout.count("already done") == 4
    report = _bench("scale=smoke", f"out_dir={out}", "report_only=true", cwd=tmp_path)
    assert report.returncode == 0 and "equal_updates: FlexLAM better in" in report.stdout


@pytest.mark.slow
def test_unknown_suite_and_missing_results_are_clear_errors(tmp_path: Path) -> None:
    run = _bench("scale=smoke", "only=[nope]", f"out_dir={tmp_path / 'x'}", cwd=tmp_path)
    assert run.returncode == 2 and "unknown suites ['nope']" in run.stderr
    run = _bench("scale=smoke", "report_only=true", f"out_dir={tmp_path / 'empty'}", cwd=tmp_path)
    assert run.returncode == 2 and "No finished seeds" in run.stderr


def _seed_run(flex: float, fixed: float, bc_flex: list[float], bc_fixed: list[float]) -> dict:
    """One seed's saved metrics for a 2-budget suite, the same in both views."""
    per_k = lambda v: {"1": v, "2": v}  # noqa: E731
    values = {"recon": {"any": {"flexlam": per_k(flex), "fixed": per_k(fixed)}},
              "bc_return": {"standard": {"flexlam": per_k(bc_flex), "fixed": per_k(bc_fixed)}}}
    model = {"updates": 100, "wall_s": 1.0, "plateaued": True, "flops": 1e9, "samples": 6400,
             "curve": [{"updates": 50, "wall_s": 0.5, "mse": {"1": flex}}]}
    return {"values": {"equal_updates": values, "equal_compute": values},
            "models": {"flexlam": model, "fixed_1": {**model, "plateaued": False}, "fixed_2": model},
            "code_usage": {"flexlam": [2.0, 3.0]}}


def test_aggregation_pairs_seeds_and_decides_each_cell() -> None:
    cfg = BenchConfig(name="t", suites=[SuiteSpec("s", ["cartpole"], 32, {}, "cartpole")], seeds=[0, 1, 2, 3, 4],
                      budgets=[1, 2], num_tokens=2)
    stats = mean_se([1.0, 2.0, 3.0])
    assert stats["mean"] == 2.0 and stats["se"] == pytest.approx(1 / math.sqrt(3))
    runs = {seed: _seed_run(1.0 + 0.01 * seed, 2.0 + 0.01 * seed, [0.5, 0.9], [0.5, 0.5]) for seed in range(5)}
    result = aggregate({"s": runs}, cfg)
    recon = [c for c in result["claims"] if c["metric"] == "recon" and c["view"] == "equal_updates"]
    assert [c["verdict"] for c in recon] == ["better", "better"]  # lower error is better: FlexLAM wins every seed
    assert all(c["diff"] == pytest.approx(-1.0) and c["n_seeds"] == 5 for c in recon)
    bc = [c for c in result["claims"] if c["metric"] == "bc_return" and c["k"] == 1 and c["view"] == "equal_updates"][0]
    assert bc["diff"] == pytest.approx(0.2) and bc["verdict"] == "better"  # per-task pairs: 0 on one task, +0.4 on the other
    assert bc["capped"]  # fixed_1 hit its update cap: the cell says so
    assert result["counts"]["equal_updates"] == {"better": 4, "tie": 0, "worse": 0}
    assert result["learning_curves"]["s"]["flexlam"][0]["n_seeds"] == 5
    assert result["compute"]["s"]["fixed_over_flexlam_flops"] == pytest.approx(2.0)
    assert result["models"]["s"][0]["flexlam"]["final_change"] is None  # one check: no slope to read


def test_final_change_reads_the_plateau_statistic_from_a_curve() -> None:
    """A capped model's slope at the cap: last window's mean loss against the one before, over its budgets."""
    losses = [9, 9, 9, 9, 1.1, 1.0, 1.0, 0.9, 1.0, 0.9, 0.9, 0.8]
    curve = [{"updates": 250 * (i + 1), "mse": {"1": 2.0 * v, "2": v}} for i, v in enumerate(losses)]
    change = final_change(curve, window=4)
    assert change == pytest.approx(3.6 / 4.0 - 1.0)  # mean over k scales both windows alike
    assert final_change(curve[:7], window=4) is None
    model = {"updates": 3000, "wall_s": 1.0, "plateaued": False, "flops": 1e9, "samples": 1, "equal_compute": {"updates": 3000}}
    table = models_table({"models": {"s": {0: {"flexlam": {**model, "final_change": change}}}}})
    assert "-10.0% (-10.0..-10.0)" in table and "0/1" in table


def test_dataset_ids_change_with_what_is_collected() -> None:
    from flexlam_rl.bench import SuiteSpec
    from flexlam_rl.sources import validate_dataset_id

    small = SuiteSpec("s", ["minigrid-empty"], 32, {"noisy": {"episodes": 3, "epsilon": 0.5}}, "minigrid-empty")
    big = SuiteSpec("s", ["minigrid-empty"], 32, {"noisy": {"episodes": 30, "epsilon": 0.5}}, "minigrid-empty")
    ids = {small.dataset_id("minigrid-empty", "noisy"), big.dataset_id("minigrid-empty", "noisy")}
    assert len(ids) == 2 and all(validate_dataset_id(i) for i in ids)


def test_paired_bootstrap_verdicts() -> None:
    from flexlam_rl.bench.stats import paired_difference_ci, verdict

    rng = np.random.default_rng(0)
    clearly_up = 0.1 + 0.01 * rng.normal(size=5)  # FlexLAM higher on every seed
    mean, ci = paired_difference_ci(clearly_up)
    assert mean == pytest.approx(clearly_up.mean()) and 0 < ci[0] < mean < ci[1]
    assert verdict(ci, higher_is_better=True) == "better" and verdict(ci, higher_is_better=False) == "worse"
    mixed = np.array([0.3, -0.2, 0.1, -0.3, 0.05])
    assert verdict(paired_difference_ci(mixed)[1], True) == "tie"
    per_task = np.stack([clearly_up, -clearly_up], axis=1)  # two tasks that cancel: stratified by task
    mean, ci = paired_difference_ci(per_task)
    assert abs(mean) < 1e-12 and verdict(ci, True) == "tie" and ci[1] - ci[0] < 0.05
    assert paired_difference_ci(clearly_up) == paired_difference_ci(clearly_up)  # seeded: reproducible
    one_seed = paired_difference_ci(np.array([0.4]))  # a single seed: no interval, no verdict
    assert one_seed[0] == pytest.approx(0.4) and verdict(one_seed[1], True) == "pending"


def test_three_seed_intervals_are_the_seed_range_and_say_their_chance_rate() -> None:
    from flexlam_rl.bench.stats import chance_verdict_rate, paired_difference_ci, verdict

    rng = np.random.default_rng(3)
    for n in (2, 3):
        diffs = rng.normal(size=n)
        assert paired_difference_ci(diffs)[1] == pytest.approx((diffs.min(), diffs.max()))
    five = rng.normal(size=5)
    low, high = paired_difference_ci(five)[1]
    assert five.min() < low and high < five.max()  # from 4 seeds on, a real interval inside the range
    assert chance_verdict_rate(3) == 0.25 and chance_verdict_rate(2) == 0.5
    assert chance_verdict_rate(4) is None and chance_verdict_rate(5) is None and chance_verdict_rate(1) is None
    # the null rate at 3 seeds, measured through the verdict itself: cells of pure symmetric noise
    verdicts = [verdict(paired_difference_ci(rng.normal(size=3), reps=2000, seed=i)[1], True) for i in range(600)]
    assert np.mean([v != "tie" for v in verdicts]) == pytest.approx(chance_verdict_rate(3), abs=0.05)


def test_mean_curves_keep_wall_time_monotone_when_seeds_stop_at_different_points() -> None:
    """A slow seed that stops early must not pull the mean curve's wall time back."""
    def run(points: list[tuple[int, float, float]]) -> dict:
        curve = [{"updates": u, "wall_s": w, "mse": {"1": m}} for u, w, m in points]
        return {"models": {"flexlam": {"curve": curve}}}
    curves = _mean_curves({0: run([(100, 10.0, 4.0), (200, 20.0, 2.0)]), 1: run([(100, 50.0, 6.0)])})["flexlam"]
    assert [p["n_seeds"] for p in curves] == [2, 1] and [p["mse"]["1"] for p in curves] == [5.0, 2.0]
    assert [p["wall_s"] for p in curves] == pytest.approx([30.0, 60.0])  # 0.1 and 0.5 s/update: 0.3 on average
