"""Shared fixtures: a private Minari root and cache, tiny real datasets collected once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

# Under pytest-xdist (the README runs `-n 2`) two workers share the 2 cores: one torch thread each, and
# OMP_NUM_THREADS=1 for the CLIs they spawn (two 2-thread processes on 2 cores run ~10x slower than one alone).
THREADS = 1 if os.environ.get("PYTEST_XDIST_WORKER") else 2
os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))
torch.set_num_threads(THREADS)

def run_bench(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``flexlam-bench`` as a user runs it, at this worker's thread count."""
    return subprocess.run([sys.executable, "-m", "flexlam_rl.cli.bench", *args, f"threads={THREADS}"], cwd=cwd,
                          env=os.environ.copy(), capture_output=True, text=True, timeout=850)


TINY_PIXELS = {"kind": "minigrid_rgb", "frame_size": 32}
TINY_LAM = {"channels": [8, 16], "hidden_dim": 64, "latent_dim": 8, "num_tokens": 4, "fsq_levels": [4]}


@pytest.fixture(scope="session", autouse=True)
def isolated_roots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Never touch ~/.minari or ~/.cache: every test sees fresh temp roots."""
    root = tmp_path_factory.mktemp("roots")
    saved = {k: os.environ.get(k) for k in ("MINARI_DATASETS_PATH", "FLEXLAM_RL_CACHE")}
    os.environ["MINARI_DATASETS_PATH"] = str(root / "minari")
    os.environ["FLEXLAM_RL_CACHE"] = str(root / "cache")
    yield root
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def pixel_dataset(isolated_roots: Path) -> str:
    """Noisy-expert DoorKey episodes at 32x32: ~200 transitions with every action kind."""
    from flexlam_rl.config import Episodes
    from flexlam_rl.data.collect import collect_dataset

    return collect_dataset("test/doorkey/noisy-v0", "minigrid-doorkey", "noisy", Episodes(8, 0, 30), epsilon=0.5,
                           preprocess=TINY_PIXELS).dataset_id


@pytest.fixture(scope="session")
def vector_dataset(isolated_roots: Path) -> str:
    from flexlam_rl.config import Episodes
    from flexlam_rl.data.collect import collect_dataset

    return collect_dataset("test/cartpole/random-v0", "cartpole", "random", Episodes(10, 0)).dataset_id


@pytest.fixture(scope="session")
def cartpole_expert_dataset(isolated_roots: Path) -> str:
    """Three scripted-expert CartPole episodes (1500 transitions), for latent BC."""
    from flexlam_rl.config import Episodes
    from flexlam_rl.data.collect import collect_dataset

    return collect_dataset("test/cartpole/expert-v0", "cartpole", "expert", Episodes(3, 100)).dataset_id


def load_benchmark(name: str):
    """A ``benchmarks/<name>.py`` script as a module (benchmarks/ is not a package), for tests that check its
    constants or rebuild its results."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the script runs
    spec.loader.exec_module(module)
    return module


def assert_same_numbers(got, want, path: str = "", rel: float = 1e-9) -> None:
    """Nested JSON-like values equal, floats up to ``rel``: a result rebuilt on another CPU can differ in the last
    bit of a float (a different SIMD path in numpy), which is not a different result."""
    import math

    if isinstance(want, float) or isinstance(got, float):
        assert isinstance(got, (int, float)) and isinstance(want, (int, float)), f"{path}: {got!r} != {want!r}"
        same = math.isclose(got, want, rel_tol=rel, abs_tol=1e-12) or (math.isnan(got) and math.isnan(want))
        assert same, f"{path}: {got!r} != {want!r}"
    elif isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), f"{path}: keys {sorted(got)} != {sorted(want)}"
        for key in want:
            assert_same_numbers(got[key], want[key], f"{path}.{key}", rel)
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{path}: {got!r} != {want!r}"
        for i, (a, b) in enumerate(zip(got, want)):
            assert_same_numbers(a, b, f"{path}[{i}]", rel)
    else:
        assert got == want, f"{path}: {got!r} != {want!r}"


def tiny_lam_config(data, **overrides):
    from flexlam_rl.config import LAMConfig

    values = dict(TINY_LAM, obs_shape=list(data.obs_shape), obs_dtype="uint8" if data.is_image else "float32",
                  preprocess=data.preprocess)
    values.update(overrides)
    return LAMConfig.from_dict(values)


FAST_TRAIN = dict(batch_size=32, lr=3e-3, warmup_steps=5, progress=False, eval_every=10_000, log_every=10)


@pytest.fixture(scope="session")
def cartpole_models(vector_dataset: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A vector LAM trained on random CartPole data and a translator aligned on 100 labels."""
    from flexlam_rl import FlexLAM
    from flexlam_rl.align import AlignConfig, LabelConfig, action_spec, embed_transitions, select_labels, train_translator
    from flexlam_rl.data.transitions import load_transitions
    from flexlam_rl.pretrain.train import TrainConfig, pretrain

    root = tmp_path_factory.mktemp("cartpole_run")
    data = load_transitions(vector_dataset, heldout_fraction=0.2)
    result = pretrain(root, data, tiny_lam_config(data, num_tokens=4, fsq_levels=[8]), TrainConfig(steps=300, **FAST_TRAIN))
    lam = FlexLAM.load(result.lam_dir)
    labeled = embed_transitions(lam, data.train, select_labels(data.train, LabelConfig(count=100)))
    translator = train_translator(lam, labeled, action_spec(data.train.sources[0].action_space), AlignConfig(steps=300))
    translator.save(root / "translator")
    return {"data": data, "lam_dir": root / "lam", "translator_dir": root / "translator", "lam": lam, "translator": translator}


@pytest.fixture(scope="session")
def pixel_models(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """An untrained 64x64 MiniGrid LAM (K=8) and a Discrete(7) translator, for wrapper checks."""
    from flexlam_rl import FlexLAM, LAMConfig
    from flexlam_rl.align import Translator, TranslatorConfig

    root = tmp_path_factory.mktemp("pixel_models")
    torch.manual_seed(0)
    lam = FlexLAM(LAMConfig(obs_shape=[64, 64, 3], num_tokens=8, channels=[8, 16], hidden_dim=64, latent_dim=8,
                            preprocess={"kind": "minigrid_rgb", "frame_size": 64, "tile_size": 8}))
    lam.save(root / "lam")
    translator = Translator(TranslatorConfig(num_tokens=8, latent_dim=8, action={"type": "discrete", "n": 7, "start": 0},
                                             hidden_dim=32, use_obs=True, obs_shape=[64, 64, 3], obs_channels=[8, 16]))
    translator.save(root / "translator")
    return {"lam_dir": root / "lam", "translator_dir": root / "translator"}
