"""The Hydra entry points, run as a user runs them (subprocess, overrides, clean errors)."""

from __future__ import annotations

import importlib.resources
import json
import os
import subprocess
import sys
from pathlib import Path

import minari
import pytest

from flexlam_rl import FlexLAM
from flexlam_rl.cli.quickstart import parse_stage_times

TINY = ["lam.channels=[8,16]", "lam.hidden_dim=64", "lam.num_tokens=4", "train.progress=false", "train.batch_size=16"]


def run_cli(module: str, *overrides: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", f"flexlam_rl.cli.{module}", *overrides],
        cwd=cwd, env=os.environ.copy(), capture_output=True, text=True, timeout=600,
    )


def test_configs_ship_as_package_data() -> None:
    configs = importlib.resources.files("flexlam_rl.configs")
    for name in ("collect.yaml", "pretrain.yaml", "quickstart.yaml", "lam/flexlam.yaml", "lam/fixed.yaml", "train/default.yaml"):
        assert (configs / name).is_file(), name


@pytest.mark.slow
def test_collect_then_pretrain_then_resume(tmp_path: Path) -> None:
    out = run_cli("collect", "env=minigrid-empty", "behaviour=random", "episodes=4", "max_episode_steps=15",
                  "dataset_id=cli/empty/random-v0", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "cli/empty/random-v0" in minari.list_local_datasets()
    assert not list(tmp_path.glob("*.log"))  # collect leaves no Hydra files in the cwd

    args = ["data.datasets=[cli/empty/random-v0]", "data.heldout_fraction=0.25", "train.steps=6",
            "train.checkpoint_every=3", f"run_dir={tmp_path / 'run'}", *TINY]
    out = run_cli("pretrain", *args, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert f"LAM checkpoint: {(tmp_path / 'run' / 'lam').resolve()}" in out.stdout
    assert "k=4" in out.stdout and "code usage" in out.stdout
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert set(metrics["heldout"]["mse"]) == {"1", "2", "3", "4"} and metrics["step"] == 6
    assert list((tmp_path / "run" / "tb").iterdir())  # TensorBoard events
    assert FlexLAM.load(tmp_path / "run" / "lam").num_tokens == 4
    assert not list((tmp_path / "run").glob("*.log"))  # the tool prints; Hydra leaves no empty pretrain.log

    again = run_cli("pretrain", *args, cwd=tmp_path)
    assert again.returncode == 0 and "resumed from step 6" in again.stdout

    supervised = run_cli("pretrain", *args[:-1], f"run_dir={tmp_path / 'supervised'}", "supervision.count=5", cwd=tmp_path)
    assert supervised.returncode == 0, supervised.stderr
    assert "action supervision: 5 of 5 labeled transitions trained a head on the first 1 token(s)" in supervised.stdout
    assert FlexLAM.load(tmp_path / "supervised" / "lam").extra["supervision"]["labels"] == 5


@pytest.mark.slow
def test_sweep_runs_each_job_in_its_own_dir(tmp_path: Path) -> None:
    assert run_cli("collect", "env=minigrid-empty", "behaviour=random", "episodes=3", "max_episode_steps=10",
                   "dataset_id=cli/sweep/random-v0", cwd=tmp_path).returncode == 0
    out = run_cli("pretrain", "-m", "data.datasets=[cli/sweep/random-v0]", "train.steps=2",
                  "lam.nested_dropout=true,false", f"hydra.sweep.dir={tmp_path / 'sweep'}", *TINY, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    configs = [json.loads((tmp_path / "sweep" / str(i) / "lam" / "config.json").read_text())["config"] for i in (0, 1)]
    assert [c["nested_dropout"] for c in configs] == [True, False]


QUICKSTART_TINY = [
    "env=minigrid-empty", "act_env=minigrid-lavagap", "collect=[{behaviour: random, episodes: 4, seed: 0}]",
    "expert.episodes=3", "train.steps=3",
    "translator.steps=20", "translator.hidden_dim=16", "bc.steps=5", "latent_bc.episodes=1", "latent_bc.budgets=[1,4]",
    "agent.total_timesteps=64", "agent.n_envs=2", "agent.eval_freq=64", "agent.eval_episodes=1",
    "agent.progress_bar=false", "agent.algo_kwargs={n_steps: 32, batch_size: 32}",
]


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One tiny quickstart run, shared by the tests that read or extend it."""
    cwd = tmp_path_factory.mktemp("quickstart")
    out = run_cli("quickstart", *QUICKSTART_TINY, f"run_dir={cwd / 'qs'}", *TINY, cwd=cwd)
    assert out.returncode == 0, out.stderr
    return {"out": out, "run": cwd / "qs", "cwd": cwd}


@pytest.mark.slow
def test_quickstart_runs_the_whole_pipeline_on_a_tiny_override(quickstart: dict) -> None:
    out, run = quickstart["out"], quickstart["run"]
    assert "quickstart done" in out.stdout and str(run.resolve()) in out.stdout
    assert not [log.name for log in run.glob("*.log") if log.stat().st_size == 0]  # no empty quickstart.log left behind
    for stage in ("=== pretrain ===", "=== align ===", "=== latent BC ===", "=== agent in latent space ==="):
        assert stage in out.stdout
    times = parse_stage_times(out.stdout)  # what benchmarks/quickstart.py reads off a fresh machine's run
    assert list(times) == ["collect", "pretrain", "align", "latent BC", "agent in latent space", "total"]
    assert abs(times["total"] - sum(list(times.values())[:-1])) <= 5  # rounded to 1 s each
    for artifact in ("lam/model.safetensors", "translator/model.safetensors", "latent_bc/model.safetensors",
                     "agent/model.zip", "align_metrics.json", "latent_bc_metrics.json", "agent/agent_metrics.json"):
        assert (run / artifact).is_file(), artifact
    align = json.loads((run / "align_metrics.json").read_text())
    assert align["labels"] >= 1 and set(align["by_budget"]) == {"1", "2", "3", "4"} and "supervised_idm" in align


@pytest.mark.slow
def test_inspect_shows_the_translator_and_what_acts_beside_the_lam(quickstart: dict) -> None:
    """flexlam-inspect on a quickstart run: the translator's accuracy beside its chance levels and IDMs, what each
    first-token code makes it do, and latent BC's and the agent's returns against their baselines."""
    run = quickstart["run"]
    out = run_cli("inspect", f"run_dir={run}", "figure=false", cwd=quickstart["cwd"])
    assert out.returncode == 0, out.stderr
    align = json.loads((run / "align_metrics.json").read_text())
    assert f"translator accuracy per budget k on {align['eval_transitions']} held-out transitions" in out.stdout
    assert f"the majority rate {align['majority_rate']:.3f}" in out.stdout and "an IDM on the same labels" in out.stdout
    codes = [line for line in out.stdout.splitlines() if line.startswith("  code ")]
    assert len(codes) == FlexLAM.load(run / "lam").codebook_size and all("action " in line and "%" in line for line in codes)
    bc = json.loads((run / "latent_bc_metrics.json").read_text())
    assert f"latent BC return: k=1: {bc['returns']['1']['mean']:.2f}" in out.stdout and "(against random" in out.stdout
    assert "agent return: " in out.stdout


@pytest.mark.slow
def test_align_and_agent_entry_points(quickstart: dict, tmp_path: Path) -> None:
    lam_dir = quickstart["run"] / "lam"
    low = ["labels=low_return", "labels.count=3", "labels.quantile=0.5", "translator.steps=10", "eval.supervised_idm=false"]
    out = run_cli("align", f"lam_dir={lam_dir}", *low, "eval.datasets=[flexlam/minigrid-empty/expert-v0]",
                  f"out={tmp_path / 'low'}", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "3 labels (low_return protocol" in out.stdout
    stages = ["selecting labels (random)", "fitting the translator on 3 labels (10 updates)", "translator checkpoint"]
    assert all(s in out.stdout for s in stages) and [out.stdout.index(s) for s in stages] == sorted(
        out.stdout.index(s) for s in stages)  # told as it goes, not only at the end
    assert "supervised IDM on the same" not in out.stdout  # eval.supervised_idm=false: no such stage
    again = run_cli("align", f"lam_dir={lam_dir}", *low, f"out={tmp_path / 'low'}", cwd=tmp_path)
    assert again.returncode == 2 and "already holds a translator" in again.stderr and "overwrite=true" in again.stderr
    own = run_cli("align", f"lam_dir={lam_dir}", *low, f"out={tmp_path / 'low'}", "overwrite=true", cwd=tmp_path)
    assert own.returncode == 0, own.stderr  # no eval.datasets: scored on the LAM's own held-out episodes
    metrics = json.loads((tmp_path / "align_metrics.json").read_text())
    assert metrics["eval_datasets"] == metrics["label_datasets"] and "expert" not in own.stdout
    out = run_cli("train_agent", "agent.space=raw", "agent.env=cartpole", "agent.total_timesteps=256", "agent.n_envs=2",
                  "agent.eval_freq=128", "agent.eval_episodes=1", "agent.progress_bar=false", f"run_dir={tmp_path / 'agent'}",
                  cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "agent" / "model.zip").is_file()


@pytest.mark.parametrize(
    "module, overrides, message",
    [
        ("pretrain", ["train.stepz=3"], "Unknown key 'stepz' in train (train.stepz)"),
        ("pretrain", ["lam.prefix_dist=gaussian"], "prefix_dist must be one of"),
        ("pretrain", ["data.datasets=[nobody/nothing/here-v0]"], "flexlam-collect"),
        ("pretrain", ["data.datasets=nobody/nothing/here-v0"], "Minari dataset 'nobody/nothing/here-v0' is not"),  # one id, no brackets
        ("collect", ["env=NoSuchEnv-v0"], "Unknown env"),
        ("collect", ["dataset_id=bad id"], "Invalid Minari dataset id"),
        ("collect", ["preprocess=foo"], "Unknown preprocess kind 'foo'"),
        ("align", ["lam_dir=/nonexistent/lam"], "No saved lam at /nonexistent/lam"),
        ("align", ["labels.fraction=0"], "fraction must be in (0, 1]"),
        ("pretrain", ["supervision.fraction=2"], "supervision.fraction must be in (0, 1]"),
        ("train_agent", ["agent.algo=dqn"], "agent.algo must be one of"),
        ("latent_bc", ["lam_dir=/nonexistent/lam"], "No saved lam"),
    ],
)
@pytest.mark.slow
def test_bad_input_gets_a_clear_error_not_a_traceback(tmp_path: Path, module: str, overrides: list[str], message: str) -> None:
    out = run_cli(module, *overrides, f"hydra.run.dir={tmp_path}", cwd=tmp_path)
    assert out.returncode != 0
    assert message in out.stderr
    assert "Traceback" not in out.stderr


def test_misspelled_keys_get_the_clear_message_first() -> None:
    from flexlam_rl.cli._common import unknown_override

    message = unknown_override("pretrain", ["train.stesp=10"])
    assert "Unknown key 'stesp' in train" in message and "Did you mean train.steps?" in message
    assert "+" not in message  # no advice the config check would then refuse (a '+train.stesp' is an unknown train key too)
    top = unknown_override("collect", ["behavior=random"])  # a top-level key gets the same message, not Hydra's struct error
    assert "Unknown key 'behavior' in the config" in top and "Did you mean behaviour?" in top
    assert unknown_override("pretrain", ["run_dirr=x"]).endswith("Did you mean run_dir?")
    assert unknown_override("bench", ["scale=smoke", "threads=1", "only=[minigrid]"]) is None  # selections and own keys
    assert "lam.num_tokenz" in unknown_override("pretrain", ["lam=fixed", "lam.num_tokenz=2"])
    assert unknown_override("pretrain", ["lam=games", "lam.change_weight=2", "train.steps=5", "+train.mine=1"]) is None
    assert unknown_override("agent", ["agent.algo_kwargs={n_steps: 128}", "agent.max_episode_steps=400"]) is None
    assert unknown_override("collect", ["preprocess={kind: atari, frame_stack: 2}", "env=pong"]) is None


def test_only_user_errors_become_one_line_messages(capsys) -> None:
    from flexlam_rl.cli._common import clean_errors
    from flexlam_rl.errors import DataError

    def user_error(cfg):
        raise DataError("dataset x is missing; collect it first")

    def bug(cfg):
        raise ValueError("an internal invariant broke")

    with pytest.raises(SystemExit) as stop:
        clean_errors(user_error)(None)
    assert stop.value.code == 2 and capsys.readouterr().err.strip() == "error: dataset x is missing; collect it first"
    with pytest.raises(ValueError, match="internal invariant"):  # a bug keeps its traceback
        clean_errors(bug)(None)


@pytest.mark.slow
def test_a_failed_run_leaves_no_empty_run_folder(tmp_path: Path) -> None:
    out = run_cli("pretrain", "data.datasets=[nobody/nothing/here-v0]", f"run_dir={tmp_path / 'never'}", cwd=tmp_path)
    assert out.returncode == 2 and "flexlam-collect" in out.stderr
    assert not (tmp_path / "never").exists()
