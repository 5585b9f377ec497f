"""Data-parallel pretraining under torchrun (gloo, 2 CPU processes) against one process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

pytestmark = pytest.mark.slow

TINY = ["lam.channels=[8,16]", "lam.hidden_dim=64", "lam.latent_dim=8", "lam.num_tokens=4", "lam.fsq_levels=[4]",
        "train.batch_size=32", "train.warmup_steps=5", "train.lr=3e-3", "train.log_every=5", "train.progress=false",
        "train.eval_every=100000"]


def _pretrain(dataset: str, run: Path, processes: int, *extra: str, wait: bool = True) -> subprocess.CompletedProcess | subprocess.Popen:
    module = ["-m", "flexlam_rl.cli.pretrain", f"data.datasets=[{dataset}]", f"run_dir={run}", *TINY, *extra]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    cmd = [*launcher, *module] if processes > 1 else [sys.executable, *module]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # what torchrun gives each worker; the 1-process run matches it
    if not wait:
        return subprocess.Popen(cmd, cwd=run.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
    return subprocess.run(cmd, cwd=run.parent, env=env, capture_output=True, text=True, timeout=600)


def _state(run: Path) -> dict:
    from flexlam_rl.pretrain.runs import latest_checkpoint

    return json.loads((latest_checkpoint(run) / "state.json").read_text())


def test_two_processes_follow_the_one_process_trajectory(pixel_dataset: str, tmp_path: Path) -> None:
    """Same (seed, step) global batches and prefix lengths, each rank a half: the same run up to fp summation order."""
    args = ("train.steps=50", "train.prefix_samples=2", "train.checkpoint_every=25")
    one = _pretrain(pixel_dataset, tmp_path / "one", 1, *args)
    assert one.returncode == 0, one.stderr[-3000:]
    two = _pretrain(pixel_dataset, tmp_path / "two", 2, *args)
    assert two.returncode == 0, two.stdout[-3000:] + two.stderr[-3000:]
    # rank 0 alone reports: one banner, one checkpoint line
    assert two.stdout.count("pretraining FlexLAM") == 1 and two.stdout.count("LAM checkpoint:") == 1

    loss_one = torch.tensor([h["loss"] for h in _state(tmp_path / "one")["history"]])
    loss_two = torch.tensor([h["loss"] for h in _state(tmp_path / "two")["history"]])
    assert len(loss_one) == len(loss_two) == 10
    assert torch.allclose(loss_one, loss_two, rtol=1e-4, atol=1e-6), (loss_one, loss_two)
    assert loss_one[-1] < loss_one[0]  # it trained
    w_one, w_two = load_file(tmp_path / "one" / "lam" / "model.safetensors"), load_file(tmp_path / "two" / "lam" / "model.safetensors")
    assert w_one.keys() == w_two.keys()
    for name in w_one:
        assert torch.allclose(w_one[name], w_two[name], atol=1e-4), name
    from flexlam_rl import FlexLAM

    assert FlexLAM.load(tmp_path / "two" / "lam").num_tokens == 4
    # rank 0 wrote everything, once
    assert (tmp_path / "two" / "metrics.json").is_file() and (tmp_path / "two" / "tb").is_dir()
    assert sorted(p.name for p in (tmp_path / "two" / "checkpoints").iterdir()) == ["latest", "step_00000025", "step_00000050"]


def test_shards_are_disjoint_and_cover_every_global_batch() -> None:
    from flexlam_rl.data.transitions import StepBatchSampler
    from flexlam_rl.pretrain.distributed import Context

    world, batch = 4, 32
    global_batches = list(StepBatchSampler(100, batch, seed=3, start_step=0, num_steps=6))
    shards = [list(StepBatchSampler(100, batch, 3, 0, 6, shard=Context(rank=r, world=world).shard(batch))) for r in range(world)]
    for step, whole in enumerate(global_batches):
        parts = [shards[r][step] for r in range(world)]
        assert sum(parts, []) == whole  # rank order gives back the global batch: nothing lost, nothing twice
        assert all(len(p) == batch // world for p in parts)


def test_two_processes_stop_on_the_same_plateau_as_one(pixel_dataset: str, tmp_path: Path) -> None:
    """Rank 0 scores the checks and decides; both ranks stop at the same step, the one a single process stops at."""
    args = ("train.until_plateau=true", "train.max_steps=400", "train.eval_every=10", "train.eval_transitions=32",
            "train.plateau_window=2", "train.plateau_tol=0.3", "train.checkpoint_every=1000")
    one = _pretrain(pixel_dataset, tmp_path / "one", 1, *args)
    two = _pretrain(pixel_dataset, tmp_path / "two", 2, *args)
    assert one.returncode == 0 and two.returncode == 0, two.stdout[-3000:] + two.stderr[-3000:]
    steps = [_state(tmp_path / name)["step"] for name in ("one", "two")]
    assert steps[0] == steps[1] < 400 and _state(tmp_path / "two")["plateau"]["stopped"]


def test_a_killed_rank_stops_the_run_and_a_restart_resumes(vector_dataset: str, tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = ("train.steps=400", "train.checkpoint_every=10", "train.keep_checkpoints=50")
    proc = _pretrain(vector_dataset, run, 2, *args, wait=False)
    try:
        deadline = time.time() + 300
        while not (run / "checkpoints" / "step_00000020").is_dir():
            assert proc.poll() is None and time.time() < deadline, proc.stdout.read() if proc.poll() is not None else "timeout"
            time.sleep(0.2)
        workers = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        assert len(workers) == 2, workers
        os.kill(int(workers[-1]), signal.SIGKILL)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode != 0
    assert "FAILED" in out and "Signal 9 (SIGKILL)" in out, out[-3000:]  # torchrun names the dead worker and its signal
    saved = max(int(p.name.split("_")[1]) for p in (run / "checkpoints").glob("step_*"))
    assert 20 <= saved < 400

    again = _pretrain(vector_dataset, run, 2, *args)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert f"resumed from step {saved}" in again.stdout
    assert _state(run)["step"] == 400 and [h["step"] for h in _state(run)["history"]] == list(range(5, 401, 5))


def test_a_batch_that_does_not_split_evenly_is_a_clear_error(vector_dataset: str, tmp_path: Path) -> None:
    out = _pretrain(vector_dataset, tmp_path / "odd", 2, "train.steps=5", "train.batch_size=33")
    assert out.returncode != 0
    assert "error: train.batch_size=33 must be divisible by the 2 processes" in out.stdout + out.stderr
    assert "Error executing job" not in out.stdout + out.stderr  # a user error, not a crash inside the job


def test_the_slurm_launcher_config_composes_into_an_sbatch_script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """configs/hydra/launcher/slurm.yaml, composed as `flexlam-bench -m hydra/launcher=slurm` would, and the
    sbatch file submitit builds from it the way the launcher does (a fake srun stands in for the cluster)."""
    import submitit
    from hydra import compose, initialize_config_module
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
    from omegaconf import OmegaConf

    for name in ("bench", "pretrain"):
        with initialize_config_module("flexlam_rl.configs", version_base="1.3"):
            cfg = compose(name, overrides=["hydra/launcher=slurm", "hydra.launcher.partition=gpu",
                                           "hydra.launcher.timeout_min=90"], return_hydra_config=True)
        launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=False)
        assert launcher["_target_"].endswith("SlurmLauncher") and launcher["gpus_per_node"] == 1
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "srun").write_text("#!/bin/sh\nexit 0\n")
    (tmp_path / "bin" / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    executor = submitit.AutoExecutor(folder=tmp_path / "jobs", cluster="slurm")
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in launcher.items()
                                  if k not in ("_target_", "submitit_folder", "max_num_timeout")})
    sbatch = executor._executor._make_submission_file_text("python -m flexlam_rl.cli.pretrain", "uid")
    for line in ("--partition=gpu", "--time=90", "--gpus-per-node=1", "--cpus-per-task=8", "--mem=32GB"):
        assert f"#SBATCH {line}" in sbatch, sbatch


def test_a_two_job_sweep_runs_through_submitit_local(vector_dataset: str, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "flexlam_rl.cli.pretrain", "-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5",
           f"data.datasets=[{vector_dataset}]", "train.steps=20", "train.seed=0,1", f"hydra.sweep.dir={sweep}",
           *[a for a in TINY if not a.startswith("lam.channels")]]
    out = subprocess.run(cmd, cwd=tmp_path, env=os.environ.copy(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    from flexlam_rl import FlexLAM

    for job in ("0", "1"):
        assert json.loads((sweep / job / "metrics.json").read_text())["step"] == 20
        assert FlexLAM.load(sweep / job / "lam").num_tokens == 4
    assert len(list((sweep / ".submitit").iterdir())) >= 2  # submitit ran them as its own jobs
    weights = [load_file(sweep / job / "lam" / "model.safetensors") for job in ("0", "1")]
    assert any(not torch.equal(weights[0][k], weights[1][k]) for k in weights[0])  # two seeds, two models
