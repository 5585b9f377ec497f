"""Fault injection: damaged caches and datasets, mismatched data, and writes that fail halfway.

Every write fault leaves the previous artifact loadable, no temp debris, and a retry that succeeds.
``FAULTS`` counts the faults injected; ``LOST`` the artifacts they destroyed (it must stay 0).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import FAST_TRAIN, tiny_lam_config

from flexlam_rl import FlexLAM
from flexlam_rl.config import Episodes
from flexlam_rl.data.sources import cache_root, minari_root
from flexlam_rl.data.transitions import load_transitions
from flexlam_rl.errors import DataError

FAULTS: list[str] = []
LOST: list[str] = []


def _cache_dir_of(dataset_id: str) -> Path:
    (folder,) = [p for p in (cache_root() / "datasets").iterdir() if p.name == dataset_id.replace("/", "_")]
    (cache,) = [p for p in folder.iterdir() if not p.name.startswith(".")]
    return cache


@pytest.fixture()
def own_dataset(isolated_roots: Path, request: pytest.FixtureRequest) -> str:
    """A small pixel dataset of this test's own, so damaging it touches no other test."""
    from flexlam_rl.data.collect import collect_dataset

    name = hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:10]
    return collect_dataset(f"faults/own{name}/random-v0", "minigrid-empty", "random", Episodes(4, 0, 12),
                           preprocess={"kind": "minigrid_rgb", "frame_size": 16}).dataset_id


# ----------------------------------------------------------------------- caches
@pytest.mark.parametrize("damage", ["truncate", "flip_first_bytes", "flip_last_bytes", "drop_arrays", "garble_info"])
def test_a_damaged_frame_cache_is_detected_and_rebuilt(own_dataset: str, damage: str, capfd) -> None:
    clean = load_transitions(own_dataset, heldout_fraction=0.0).train.__getitems__(np.arange(10))
    cache = _cache_dir_of(own_dataset)
    frames = cache / "frames.bin"
    if damage == "truncate":
        os.truncate(frames, frames.stat().st_size // 2)
    elif damage in ("flip_first_bytes", "flip_last_bytes"):  # the same size, different bytes: only the checksum sees it
        with open(frames, "r+b") as handle:
            handle.seek(0 if damage == "flip_first_bytes" else frames.stat().st_size - 8)
            handle.write(bytes(255 - b for b in handle.read(8)) if damage == "flip_last_bytes" else b"\xff" * 8)
    elif damage == "drop_arrays":
        (cache / "arrays.safetensors").unlink()
    else:
        (cache / "info.json").write_text("{not json")
    FAULTS.append(f"cache: {damage}")
    capfd.readouterr()
    again = load_transitions(own_dataset, heldout_fraction=0.0).train.__getitems__(np.arange(10))
    notice = capfd.readouterr().err
    assert "frame cache" in notice and "damaged" in notice and "rebuilding" in notice and notice.count("\n") == 1
    assert all(np.array_equal(clean[key], again[key]) for key in clean)
    if not all(np.array_equal(clean[key], again[key]) for key in clean):
        LOST.append(f"cache: {damage}")


def test_cache_files_get_normal_permissions(own_dataset: str) -> None:
    load_transitions(own_dataset)
    cache = _cache_dir_of(own_dataset)
    mask = os.umask(0)
    os.umask(mask)
    assert cache.stat().st_mode & 0o777 == 0o777 & ~mask
    for name in ("frames.bin", "arrays.safetensors", "info.json"):
        assert (cache / name).stat().st_mode & 0o777 == 0o666 & ~mask, name


@pytest.mark.parametrize("damage", ["truncate_hdf5", "drop_metadata"])
def test_a_broken_minari_dataset_is_a_clear_error(own_dataset: str, damage: str) -> None:
    root = minari_root() / own_dataset
    if damage == "truncate_hdf5":
        (main,) = (root / "data").glob("main_data*")
        os.truncate(main, main.stat().st_size // 3)
    else:
        (root / "data" / "metadata.json").unlink()
    FAULTS.append(f"dataset: {damage}")
    with pytest.raises(DataError, match=rf"{own_dataset}.*cannot be read.*Re-collect.*minari download"):
        load_transitions(own_dataset)


def test_a_dataset_from_a_newer_minari_is_named_as_such_not_as_corrupt(own_dataset: str) -> None:
    """The procgen extra holds Minari at 0.5.3 (numpy<2); a dataset written by a newer Minari is not broken."""
    meta = minari_root() / own_dataset / "data" / "metadata.json"
    record = json.loads(meta.read_text())
    record["minari_version"] = "99.0.0"
    meta.write_text(json.dumps(record))
    FAULTS.append("dataset: newer minari")
    with pytest.raises(DataError, match=r"written by a newer Minari than the installed .*re-collect it here") as err:
        load_transitions(own_dataset)
    assert "corrupt" not in str(err.value)


# ------------------------------------------------------------- mismatched data
def test_labels_and_scores_from_datasets_with_different_actions_are_refused(cartpole_models, isolated_roots) -> None:
    """The bug this module was written for: a Box-action translator scored against Discrete actions of another env."""
    from flexlam_rl.align import AlignConfig, AlignData, LabelConfig, align_lam
    from flexlam_rl.data.collect import collect_dataset

    pendulum = collect_dataset("faults/pendulum/random-v0", "pendulum", "random", Episodes(2, 0)).dataset_id
    FAULTS.append("mismatch: align on Discrete labels, score on Box actions")
    with pytest.raises(DataError, match=r"(?s)action.*Discrete\(2\).*faults/pendulum/random-v0.*Box"):
        align_lam(cartpole_models["lam_dir"], LabelConfig(count=20), AlignConfig(steps=1), AlignData(eval_ids=[pendulum]),
                  out=isolated_roots / "never")
    assert not (isolated_roots / "never").exists()  # refused before anything was trained or written


def test_expert_data_that_does_not_fit_the_lam_is_refused_before_training(cartpole_models, pixel_dataset) -> None:
    from flexlam_rl.act.latent_bc import LatentBCTrainConfig
    from flexlam_rl.act.pipeline import run_latent_bc

    FAULTS.append("mismatch: pixel expert data for a vector LAM")
    with pytest.raises(DataError, match=rf"(?s){pixel_dataset}.*\[32, 32, 3\].*LAM.*\[4\]"):
        run_latent_bc(cartpole_models["lam_dir"], "cartpole", [pixel_dataset], LatentBCTrainConfig(steps=10**6),
                      translator_dir=cartpole_models["translator_dir"])


# ------------------------------------------------------------------ failed writes
def _in_subprocess_with_full_disk(code: str, limit_bytes: int, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``code`` with every file write capped at ``limit_bytes`` (RLIMIT_FSIZE): what a full disk looks like to us."""
    prelude = textwrap.dedent(f"""
        import resource, signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing us
        resource.setrlimit(resource.RLIMIT_FSIZE, ({limit_bytes}, {limit_bytes}))
    """)
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], cwd=cwd, env=os.environ.copy(),
                          capture_output=True, text=True, timeout=300)


def _debris(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith((".tmp", ".building-", ".flexlam-tmp", ".flexlam-old"))
            or (p.name.startswith(".") and ".tmp" in p.name)]


def test_a_full_disk_during_a_checkpoint_loses_nothing(vector_dataset: str, tmp_path: Path) -> None:
    from flexlam_rl.pretrain.runs import latest_checkpoint
    from flexlam_rl.pretrain.train import TrainConfig, pretrain

    data = load_transitions(vector_dataset, heldout_fraction=0.2)
    cfg = dict(FAST_TRAIN, checkpoint_every=10, keep_checkpoints=2)

    def stop_at_20(step: int, loss: float) -> None:
        if step == 20:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # an interrupted 40-step run, last checkpoint at step 10
        pretrain(tmp_path / "run", data, tiny_lam_config(data), TrainConfig(steps=40, **cfg), on_step=stop_at_20)
    last = latest_checkpoint(tmp_path / "run")
    before = FlexLAM.load(tmp_path / "run" / "lam").state_dict()
    code = f"""
        from conftest import FAST_TRAIN, tiny_lam_config
        from flexlam_rl.data.transitions import load_transitions
        from flexlam_rl.pretrain.train import TrainConfig, pretrain
        data = load_transitions({vector_dataset!r}, heldout_fraction=0.2)
        pretrain({str(tmp_path / "run")!r}, data, tiny_lam_config(data), TrainConfig(steps=40, **dict(FAST_TRAIN, checkpoint_every=10)))
    """
    FAULTS.append("full disk: checkpoint")
    failed = _in_subprocess_with_full_disk(code, limit_bytes=4096, cwd=Path(__file__).parent)
    assert failed.returncode != 0 and "File too large" in failed.stderr
    assert latest_checkpoint(tmp_path / "run") == last
    after = FlexLAM.load(tmp_path / "run" / "lam").state_dict()
    if not all(torch.equal(before[k], after[k]) for k in before):
        LOST.append("checkpoint")
    assert all(torch.equal(before[k], after[k]) for k in before) and not _debris(tmp_path / "run")
    resumed = pretrain(tmp_path / "run", data, tiny_lam_config(data), TrainConfig(steps=40, **cfg))
    assert resumed.resumed_from == int(last.name.split("_")[1]) and resumed.step == 40


def test_a_write_error_while_refreshing_lam_keeps_the_previous_model(vector_dataset: str, tmp_path: Path, monkeypatch) -> None:
    import flexlam_rl.checkpoint as checkpoint
    from flexlam_rl.checkpoint import read_tensors
    from flexlam_rl.pretrain.runs import latest_checkpoint
    from flexlam_rl.pretrain.train import TrainConfig, pretrain

    data = load_transitions(vector_dataset, heldout_fraction=0.2)
    cfg = dict(FAST_TRAIN, checkpoint_every=10, until_plateau=True)  # a capped plateau run can be extended
    pretrain(tmp_path / "run", data, tiny_lam_config(data), TrainConfig(max_steps=10, **cfg))
    before = FlexLAM.load(tmp_path / "run" / "lam").state_dict()
    real_replace = os.replace

    def failing_replace(src, dst, *args, **kwargs):
        if Path(dst).parent.name == "lam":
            raise OSError(28, "No space left on device")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(checkpoint.os, "replace", failing_replace)
    FAULTS.append("write error: lam/ refresh")
    with pytest.raises(OSError, match="No space left"):
        pretrain(tmp_path / "run", data, tiny_lam_config(data), TrainConfig(max_steps=20, **cfg))
    monkeypatch.undo()
    after = FlexLAM.load(tmp_path / "run" / "lam").state_dict()
    if not all(torch.equal(before[k], after[k]) for k in before):
        LOST.append("lam/")
    assert all(torch.equal(before[k], after[k]) for k in before) and not _debris(tmp_path / "run")
    retry = pretrain(tmp_path / "run", data, tiny_lam_config(data), TrainConfig(max_steps=20, **cfg))

    saved = read_tensors(latest_checkpoint(tmp_path / "run") / "model.safetensors")
    refreshed = FlexLAM.load(tmp_path / "run" / "lam").state_dict()
    assert retry.step == 20 and all(torch.equal(saved[k], refreshed[k]) for k in saved)  # lam/ caught up with the run


def test_a_full_disk_during_collection_keeps_the_previous_dataset(isolated_roots: Path) -> None:
    import minari

    from flexlam_rl.config import Episodes
    from flexlam_rl.data.collect import collect_dataset

    dataset_id = collect_dataset("faults/collect/random-v0", "minigrid-empty", "random", Episodes(2, 0),
                                 preprocess={"kind": "minigrid_rgb", "frame_size": 16}).dataset_id
    code = f"""
        from flexlam_rl.config import Episodes
        from flexlam_rl.data.collect import collect_dataset
        collect_dataset({dataset_id!r}, "minigrid-empty", "random", Episodes(40, 1), overwrite=True)
    """
    FAULTS.append("full disk: dataset collection")
    failed = _in_subprocess_with_full_disk(code, limit_bytes=64 * 1024, cwd=isolated_roots)
    assert failed.returncode != 0
    if minari.load_dataset(dataset_id).total_episodes != 2:
        LOST.append("dataset")
    assert minari.load_dataset(dataset_id).total_episodes == 2 and not _debris(minari_root())
    collect_dataset(dataset_id, "minigrid-empty", "random", Episodes(3, 1), overwrite=True,
                    preprocess={"kind": "minigrid_rgb", "frame_size": 16})
    assert minari.load_dataset(dataset_id).total_episodes == 3


def test_a_full_disk_during_a_cache_build_leaves_no_half_cache(own_dataset: str, isolated_roots: Path) -> None:
    code = f"""
        from flexlam_rl.data.transitions import load_transitions
        load_transitions({own_dataset!r})
    """
    FAULTS.append("full disk: frame cache build")
    failed = _in_subprocess_with_full_disk(code, limit_bytes=2048, cwd=isolated_roots)
    assert failed.returncode != 0 and not _debris(cache_root())
    assert len(load_transitions(own_dataset, heldout_fraction=0.0).train) > 0  # the retry builds it


def test_a_full_disk_while_saving_a_translator_keeps_the_previous_one(cartpole_models, tmp_path: Path) -> None:
    from flexlam_rl import Translator

    cartpole_models["translator"].save(tmp_path / "translator")
    before = Translator.load(tmp_path / "translator").state_dict()
    code = f"""
        import torch
        from flexlam_rl import Translator
        translator = Translator.load({str(tmp_path / "translator")!r})
        with torch.no_grad():
            for p in translator.parameters():
                p.add_(1.0)
        translator.save({str(tmp_path / "translator")!r})
    """
    FAULTS.append("full disk: translator save")
    failed = _in_subprocess_with_full_disk(code, limit_bytes=4096, cwd=tmp_path)
    assert failed.returncode != 0
    after = Translator.load(tmp_path / "translator").state_dict()
    if not all(torch.equal(before[k], after[k]) for k in before):
        LOST.append("translator")
    assert all(torch.equal(before[k], after[k]) for k in before) and not _debris(tmp_path)


def test_a_full_disk_while_writing_results_keeps_the_previous_report(tmp_path: Path) -> None:
    from flexlam_rl.checkpoint import atomic_write_json

    atomic_write_json(tmp_path / "results.json", {"cells": [1, 2, 3]})
    code = f"""
        from flexlam_rl.checkpoint import atomic_write_json
        atomic_write_json({str(tmp_path / "results.json")!r}, {{"cells": list(range(100_000))}})
    """
    FAULTS.append("full disk: results")
    failed = _in_subprocess_with_full_disk(code, limit_bytes=4096, cwd=tmp_path)
    assert failed.returncode != 0
    if json.loads((tmp_path / "results.json").read_text()) != {"cells": [1, 2, 3]}:
        LOST.append("results")
    assert json.loads((tmp_path / "results.json").read_text()) == {"cells": [1, 2, 3]} and not _debris(tmp_path)


def test_zz_fault_count(request: pytest.FixtureRequest) -> None:
    """At least 12 fault cases are in this module (a test case that appends to ``FAULTS`` injects one; counted from
    the module's items, so it holds whichever worker runs which and whatever was selected), and none that ran in this
    process lost an artifact (each case also asserts its own artifact intact)."""
    import inspect
    import sys

    module = sys.modules[__name__]
    cases = [item for item in request.node.parent.collect()  # the module's own items, whatever was selected or ran
             if getattr(item, "module", None) is module and "FAULTS.append(" in inspect.getsource(item.function)]
    print(f"\nfault cases collected: {len(cases)}; injected in this process: {len(FAULTS)}, artifacts lost: {len(LOST)}")
    assert len(cases) >= 12 and LOST == []
