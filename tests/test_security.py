"""Loading never executes code from a file and refuses hostile or mismatched checkpoints clearly."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch

import flexlam_rl
from flexlam_rl import FlexLAM, LAMConfig, Translator
from flexlam_rl.act.latent_bc import LatentBCConfig, LatentBCPolicy
from flexlam_rl.align import TranslatorConfig
from flexlam_rl.checkpoint import FORMAT_VERSION, CheckpointError
from flexlam_rl.config import ConfigError

SMALL = dict(obs_shape=[4], obs_dtype="float32", num_tokens=2, hidden_dim=16, latent_dim=4)


class _Payload:
    """Unpickling this creates a marker file: proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture()
def saved(tmp_path: Path) -> dict[str, Path]:
    lam = FlexLAM(LAMConfig(**SMALL))
    lam.save(tmp_path / "lam")
    action = {"type": "discrete", "n": 2, "start": 0}
    Translator(TranslatorConfig(num_tokens=2, latent_dim=4, action=action, hidden_dim=8)).save(tmp_path / "tr")
    LatentBCPolicy(LatentBCConfig([4], 2, 8, hidden_dim=8)).save(tmp_path / "bc")
    return {"lam": tmp_path / "lam", "tr": tmp_path / "tr", "bc": tmp_path / "bc"}


LOADERS = {"lam": FlexLAM.load, "tr": Translator.load, "bc": LatentBCPolicy.load}


@pytest.mark.parametrize("which", ["lam", "tr", "bc"])
def test_pickle_payload_disguised_as_safetensors_never_runs(saved, tmp_path: Path, which: str) -> None:
    marker = tmp_path / f"pwned_{which}"
    (saved[which] / "model.safetensors").write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(CheckpointError, match="not a valid safetensors file.*never loads pickled"):
        LOADERS[which](saved[which])
    assert not marker.exists()


def test_torch_save_file_is_refused_unread(saved, tmp_path: Path) -> None:
    marker = tmp_path / "pwned_torch"
    torch.save({"weights": _Payload(marker)}, saved["lam"] / "model.safetensors")
    with pytest.raises(CheckpointError, match="not a valid safetensors"):
        FlexLAM.load(saved["lam"])
    assert not marker.exists()


def _edit_config(path: Path, **changes) -> None:
    header = json.loads((path / "config.json").read_text())
    for key, value in changes.items():
        if key in header:
            header[key] = value
        else:
            header["config"][key] = value
    (path / "config.json").write_text(json.dumps(header))


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"num_tokens": "8"}, "num_tokens must be an integer"),
        ({"num_tokens": True}, "num_tokens must be an integer"),
        ({"fsq_levels": [8, "x"]}, "fsq_levels entry"),
        ({"obs_shape": [64, 64]}, "obs_shape must be"),
        ({"hidden_dim": 10**9}, "hidden_dim must be an integer in"),
        ({"latent_dim": 4096, "num_tokens": 64, "hidden_dim": 16384}, "parameters"),
        ({"evil": "x"}, "Unknown LAM config keys"),
        ({"preprocess": {"kind": "../../etc/passwd"}}, "preprocess kind"),
        ({"preprocess": {"kind": "minigrid_rgb", "frame_size": 10**6}}, "frame_size"),
        ({"format_version": 99}, "newer than this library"),
        ({"format_version": "1"}, "no integer format_version"),
        ({"kind": "translator"}, "holds a 'translator', not a 'lam'"),
        ({"config": [1, 2]}, "no 'config' object"),
    ],
)
def test_hostile_configs_fail_clearly(saved, changes, message) -> None:
    _edit_config(saved["lam"], **changes)
    with pytest.raises((CheckpointError, ConfigError), match=message):
        FlexLAM.load(saved["lam"])


def test_config_that_is_not_json_or_too_big(saved) -> None:
    (saved["lam"] / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        FlexLAM.load(saved["lam"])
    (saved["lam"] / "config.json").write_text(json.dumps({"pad": "x" * 2_000_000}))
    with pytest.raises(CheckpointError, match="at most 1000000"):
        FlexLAM.load(saved["lam"])
    (saved["lam"] / "config.json").write_text("[1, 2, 3]")
    with pytest.raises(CheckpointError, match="JSON object"):
        FlexLAM.load(saved["lam"])


def test_missing_files_and_wrong_paths(saved, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not a directory"):
        FlexLAM.load(tmp_path / "nowhere")
    with pytest.raises(CheckpointError, match="pass the directory"):
        FlexLAM.load(saved["lam"] / "config.json")
    (saved["lam"] / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="Missing weights file"):
        FlexLAM.load(saved["lam"])


def test_weights_from_another_model_are_not_partially_loaded(saved, tmp_path: Path) -> None:
    FlexLAM(LAMConfig(**{**SMALL, "latent_dim": 8})).save(tmp_path / "other")
    shutil.copy(tmp_path / "other" / "model.safetensors", saved["lam"] / "model.safetensors")
    with pytest.raises(CheckpointError, match="do not match its config"):
        FlexLAM.load(saved["lam"])


def test_dataset_ids_from_checkpoints_cannot_escape_the_minari_root() -> None:
    from flexlam_rl.data.sources import load_source

    for bad in ["../../etc/passwd-v0", "/etc/passwd-v0", "a/../../b-v0"]:
        with pytest.raises(ValueError, match="Invalid Minari dataset id"):
            load_source(bad)


def test_versions_are_recorded(saved) -> None:
    header = json.loads((saved["lam"] / "config.json").read_text())
    assert header["format_version"] == FORMAT_VERSION and header["library_version"] == flexlam_rl.__version__


def test_saved_files_are_readable_like_plain_files(saved) -> None:
    mask = os.umask(0)
    os.umask(mask)
    for name in ("model.safetensors", "config.json"):
        assert (saved["lam"] / name).stat().st_mode & 0o777 == 0o666 & ~mask  # not mkstemp's private 0600


def test_older_formats_are_refused_with_the_fix(saved) -> None:
    for which in ("lam", "tr"):
        header = json.loads((saved[which] / "config.json").read_text())
        (saved[which] / "config.json").write_text(json.dumps({**header, "format_version": 1, "library_version": "0.1.0"}))
    with pytest.raises(CheckpointError, match="format 1 .*quantizer changed.*flexlam-pretrain"):
        FlexLAM.load(saved["lam"])
    with pytest.raises(CheckpointError, match="format 1 .*flexlam-align"):
        Translator.load(saved["tr"])
