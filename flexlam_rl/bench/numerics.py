"""The golden numerics run: a tiny fixed pretraining whose held-out error and weights ``tests/golden/numerics.json``
records per ``NUMERICS_VERSION`` (``tests/test_numerics.py`` compares at a relative 1e-4), and that
``benchmarks/numerics_machine.py`` runs on each machine kind: the same code gives other last bits on another CPU
kind, which is why every benchmark unit and seed file records its machine.
"""

from __future__ import annotations

import os
from pathlib import Path


def golden_values(root: Path) -> dict[str, object]:
    """The fixed run under ``root`` (its own Minari and cache roots, restored after): DoorKey frames at 32 px, a
    4-token LAM, 40 updates, one torch thread (the thread count changes how convolutions sum)."""
    saved = {name: os.environ.get(name) for name in ("MINARI_DATASETS_PATH", "FLEXLAM_RL_CACHE")}
    os.environ.update(MINARI_DATASETS_PATH=str(root / "minari"), FLEXLAM_RL_CACHE=str(root / "cache"))
    try:
        return _run(root)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _run(root: Path) -> dict[str, object]:
    import torch

    from ..config import Episodes, LAMConfig
    from ..data.collect import collect_dataset
    from ..data.transitions import load_transitions
    from ..evaluate.reconstruction import reconstruction_by_budget
    from ..model.lam import FlexLAM
    from ..pretrain.train import TrainConfig, pretrain

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        dataset = collect_dataset("golden/doorkey/noisy-v0", "minigrid-doorkey", "noisy", Episodes(8, 0, 30), epsilon=0.5,
                                  preprocess={"kind": "minigrid_rgb", "frame_size": 32}).dataset_id
        data = load_transitions(dataset, heldout_fraction=0.25, seed=0)
        lam_cfg = LAMConfig.from_dict({"channels": [8, 16], "hidden_dim": 64, "latent_dim": 8, "num_tokens": 4, "fsq_levels": [4],
                                       "obs_shape": list(data.obs_shape), "obs_dtype": "uint8", "preprocess": data.preprocess})
        result = pretrain(root / "run", data, lam_cfg, TrainConfig(steps=40, batch_size=16, lr=3e-3, warmup_steps=5, seed=0,
                                                                    progress=False, eval_every=10_000, log_every=10))
        lam = FlexLAM.load(result.lam_dir)
        mse = reconstruction_by_budget(lam, data.heldout)["mse"]
        weights = sum(float(t.abs().double().sum()) for t in lam.state_dict().values())
    finally:
        torch.set_num_threads(threads)
    return {"heldout_mse": {str(k): float(v) for k, v in mse.items()}, "weights_abs_sum": weights,
            "digest": lam.fingerprint(), "transitions": [len(data.train), len(data.heldout)]}
