"""Safe, atomic checkpoints: safetensors weights + a versioned JSON config, never pickle.

Every file is written to a temporary sibling and renamed into place, so a crash leaves
either the old file or the new one. Loading validates ``config.json`` (format version,
kind, sizes) before building a module and checks every tensor name and shape before
copying weights: a mismatch is an error, never a silent partial load.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from ._version import __version__
from .errors import CheckpointError

# 2 (flexlam-rl 0.2): the translator's and latent BC policy's o_t encoders became the shared ConvEncoder
# (new tensor names), and FSQ's bound was fixed (2-level tokens were NaN), which moves every LAM's tokens.
FORMAT_VERSION = 2
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
MAX_CONFIG_BYTES = 1_000_000
MAX_PARAMETERS = 500_000_000  # a config implying more is refused before anything is allocated

M = TypeVar("M", bound=nn.Module)


def weights_digest(module: nn.Module, config: Mapping[str, Any]) -> str:
    """A short hash of a module's config and weights (not of its file, whose header holds paths and timings): two
    trainings gave the same model exactly when their digests match."""
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


# ------------------------------------------------------------------ atomic writes
def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()  # read once: os.umask is process-wide, so toggling it per write would race threads
_FILE_MODE = 0o666 & ~_UMASK  # what a plain open() gives (mkstemp's own mode is 0600)
_DIR_MODE = 0o777 & ~_UMASK  # what a plain mkdir() gives (mkdtemp's own mode is 0700)


def normal_permissions(root: str | Path) -> None:
    """Give a folder built in a temp dir (``mkdtemp``: 0700, files 0600) the modes plain files and folders get."""
    root = Path(root)
    os.chmod(root, _DIR_MODE)
    for path in root.rglob("*"):
        os.chmod(path, _DIR_MODE if path.is_dir() else _FILE_MODE)


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temp file beside ``path``; on success it is renamed onto ``path``, on failure removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _FILE_MODE)  # shared checkpoints and results stay readable by others
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return Path(path)


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def atomic_save_tensors(path: str | Path, tensors: Mapping[str, torch.Tensor]) -> Path:
    with atomic_path(path) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp))
    return Path(path)


# --------------------------------------------------------------------- reading
def read_json(path: str | Path, what: str = "config", max_bytes: int = MAX_CONFIG_BYTES) -> dict[str, Any]:
    """Read a small JSON object (at most ``max_bytes``), with errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Missing {what} file {path}.")
    if path.stat().st_size > max_bytes:
        raise CheckpointError(f"{path} is {path.stat().st_size} bytes; a {what} file is at most {max_bytes}.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc}); the checkpoint is corrupt or not a flexlam-rl file.") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} must hold a JSON object, got {type(data).__name__}.")
    return data


def read_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a safetensors file; anything else (pickle, truncated, garbage) is refused unread."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Missing weights file {path}.")
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(
            f"{path} is not a valid safetensors file ({exc}). flexlam-rl never loads pickled weights; "
            f"re-save the model with .save() or re-train it."
        ) from None


# ------------------------------------------------------------- module save/load
def save_module(
    module: nn.Module, path: str | Path, kind: str, config: Mapping[str, Any], extra: Mapping[str, Any] | None = None
) -> Path:
    """Write ``model.safetensors`` then ``config.json`` into directory ``path``."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    atomic_save_tensors(path / WEIGHTS_FILE, module.state_dict())
    header = {
        "format_version": FORMAT_VERSION,
        "library_version": __version__,
        "kind": kind,
        "config": dict(config),
        "extra": dict(extra or {}),
    }
    atomic_write_json(path / CONFIG_FILE, header)
    return path


def read_header(path: str | Path, kind: str) -> dict[str, Any]:
    """Validate ``config.json`` of a saved module and return it."""
    path = Path(path)
    if not path.is_dir():
        hint = " (pass the directory that holds model.safetensors and config.json)" if path.is_file() else ""
        raise CheckpointError(f"No saved {kind} at {path}: not a directory{hint}.")
    header = read_json(path / CONFIG_FILE)
    version = header.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise CheckpointError(f"{path / CONFIG_FILE} has no integer format_version; it was not written by flexlam-rl.")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} uses checkpoint format {version} (written by flexlam-rl {header.get('library_version')}), "
            f"newer than this library's format {FORMAT_VERSION}; upgrade flexlam-rl to load it."
        )
    if version < 1:
        raise CheckpointError(f"{path} has unknown checkpoint format {version}.")
    if header.get("kind") != kind:
        raise CheckpointError(f"{path} holds a {header.get('kind')!r}, not a {kind!r}.")
    if version < FORMAT_VERSION:
        raise CheckpointError(
            f"{path} holds a {kind} in checkpoint format {version} (flexlam-rl {header.get('library_version')}); this "
            f"library reads format {FORMAT_VERSION}, because its network layout and quantizer changed. Re-create it "
            f"(flexlam-pretrain, flexlam-align, flexlam-latent-bc) or use flexlam-rl {header.get('library_version')}."
        )
    if not isinstance(header.get("config"), dict):
        raise CheckpointError(f"{path / CONFIG_FILE} has no 'config' object.")
    return header


def tensor_header(path: str | Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """Names, shapes and dtypes in a safetensors file, read from its header only (no tensor data)."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Missing weights file {path}.")
    try:
        with safe_open(str(path), framework="pt") as handle:
            return {name: (tuple(handle.get_slice(name).get_shape()), str(handle.get_slice(name).get_dtype()))
                    for name in handle.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(
            f"{path} is not a valid safetensors file ({exc}). flexlam-rl never loads pickled weights; "
            f"re-save the model with .save() or re-train it."
        ) from None


def _dtype_name(dtype: torch.dtype) -> str:
    return {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64",
            torch.int32: "I32", torch.uint8: "U8", torch.bool: "BOOL", torch.float64: "F64"}.get(dtype, str(dtype))


def load_module(
    path: str | Path, kind: str, build: Callable[[dict[str, Any]], M], device: str | torch.device = "cpu"
) -> M:
    """Validate the config, dry-build it on the meta device, check the file's header against it,
    and only then allocate the module and copy the weights (no silent partial load)."""
    path = Path(path)
    header = read_header(path, kind)
    with torch.device("meta"):  # shapes only: a hostile config cannot make us allocate anything
        probe = build(header["config"])
    expected = probe.state_dict()
    count = sum(t.numel() for t in expected.values())
    if count > MAX_PARAMETERS:
        raise CheckpointError(f"{path / CONFIG_FILE} describes a model with {count:,} parameters (limit "
                              f"{MAX_PARAMETERS:,}); the config is corrupt or hostile.")
    stored = tensor_header(path / WEIGHTS_FILE)
    missing, unexpected = sorted(set(expected) - set(stored)), sorted(set(stored) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"Weights in {path} do not match its config: missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}. The files come from different models."
        )
    for name, ref in expected.items():
        shape, dtype = stored[name]
        if shape != tuple(ref.shape) or dtype != _dtype_name(ref.dtype):
            raise CheckpointError(f"Weights in {path} do not match its config: {name} is {shape} {dtype}, "
                                  f"config implies {tuple(ref.shape)} {_dtype_name(ref.dtype)}.")
    module = build(header["config"])
    load_state_strict(module, read_tensors(path / WEIGHTS_FILE), str(path))
    module.source_path = str(path)  # lets wrappers record a re-creatable (JSON) spec
    module.extra = header.get("extra", {})
    return module.to(device).eval()


def origin(module: Any) -> str:
    """Where a model came from, for messages: the directory it was loaded from, or "in memory" (never saved or
    loaded, so it has no ``source_path``)."""
    return getattr(module, "source_path", None) or "in memory"


def load_state_strict(module: nn.Module, tensors: Mapping[str, torch.Tensor], where: str) -> None:
    expected = module.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"Weights in {where} do not match its config: missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}. The files come from different models."
        )
    for name, ref in expected.items():
        got = tensors[name]
        if tuple(got.shape) != tuple(ref.shape) or got.dtype != ref.dtype:
            raise CheckpointError(
                f"Weights in {where} do not match its config: {name} is {tuple(got.shape)} {got.dtype}, "
                f"config implies {tuple(ref.shape)} {ref.dtype}."
            )
    module.load_state_dict(dict(tensors), strict=True)


# ------------------------------------------------------------- optimizer state
def optimizer_to_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer state dict into tensors (safetensors) and JSON-able scalars."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for idx, slots in state["state"].items():
        for name, value in slots.items():
            if torch.is_tensor(value):
                tensors[f"state.{idx}.{name}"] = value
            else:
                scalars[f"{idx}.{name}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def optimizer_from_tensors(optimizer: torch.optim.Optimizer, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        _, idx, name = key.split(".", 2)
        state.setdefault(int(idx), {})[name] = value
    for key, value in meta.get("scalars", {}).items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
