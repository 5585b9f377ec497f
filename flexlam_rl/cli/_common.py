"""What every entry point shares: run directory, config conversion, clean errors."""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
from pathlib import Path
from typing import Any, Callable

from omegaconf import DictConfig, OmegaConf

from ..checkpoint import CheckpointError
from ..config import ConfigError
from ..data import DataError
from ..train import TrainingDiverged

CONFIG_PATH = "pkg://flexlam_rl.configs"

# Errors whose message already says what is wrong and how to fix it: no traceback.
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, CheckpointError, ConfigError, DataError, TrainingDiverged)


def run_dir() -> Path:
    """This job's output directory (``run_dir``, or the sweep subdir under ``-m``)."""
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir)


def to_plain(cfg: Any) -> Any:
    """OmegaConf -> plain Python (SB3 and our dataclasses want plain dicts and lists)."""
    return OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) or OmegaConf.is_config(cfg) else cfg


def dataclass_from(cls: type, values: Any, section: str) -> Any:
    """Build a config dataclass from a Hydra section, naming unknown keys instead of a TypeError."""
    values = dict(to_plain(values))
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"Unknown {section} keys {unknown}; known: {sorted(known)}.")
    return cls(**values)


def clean_errors(task: Callable[[DictConfig], Any]) -> Callable[[DictConfig], Any]:
    """Print ``error: <message>`` and exit 2 on a user error instead of a stack trace.

    ``FLEXLAM_DEBUG=1`` re-raises, for the full traceback.
    """

    @functools.wraps(task)
    def wrapper(cfg: DictConfig) -> Any:
        try:
            return task(cfg)
        except KeyboardInterrupt:
            print("\ninterrupted; the last checkpoint is kept (rerun with the same run_dir to resume).", file=sys.stderr)
            sys.exit(130)
        except USER_ERRORS as exc:
            if os.environ.get("FLEXLAM_DEBUG"):
                raise
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)

    return wrapper
