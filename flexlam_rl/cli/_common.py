"""What every entry point shares: the run directory, config parsing and clean errors."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from omegaconf import DictConfig

from ..config import parse_config, plain
from ..errors import FlexLAMError, FlexLAMWarning
from ..runtime import keep_freed_memory

CONFIG_PATH = "pkg://flexlam_rl.configs"
T = TypeVar("T")


def run_dir() -> Path:
    """This job's output directory (``run_dir``, or the sweep subdir under ``-m``)."""
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir)


def section(cls: type[T], values: Any, name: str, **extra: Any) -> T:
    """A Hydra config group -> the dataclass ``cls`` (unknown keys and bad values are clear errors)."""
    return parse_config(cls, {**plain(values), **extra}, name)


def hydra_entry(config_name: str, task: Callable[[DictConfig], Any]) -> Callable[[], Any]:
    """A console-script ``main``: Hydra composes ``configs/<config_name>.yaml`` with the command-line
    overrides and calls ``task``; user errors print as one line (:func:`clean_errors`)."""
    import hydra

    run = hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name=config_name)(clean_errors(task))

    @functools.wraps(run)
    def main() -> Any:
        unknown = unknown_override(config_name, sys.argv[1:])
        if unknown:
            print(f"error: {unknown}", file=sys.stderr)
            sys.exit(2)
        return run()

    return main


def unknown_override(config_name: str, args: list[str]) -> str | None:
    """The first ``key=value`` or ``group.key=value`` override naming a key the config does not have, as a message
    with the known keys and the closest one (Hydra's own error is a traceback-like struct error, and its advice to
    prefix the override with ``+`` only moves the refusal to the config check); None if all are known.

    Group selections (``lam=fixed``) are applied first, so their keys count; ``+``/``~`` overrides, ``hydra.*``
    and open mappings (``agent.algo_kwargs``, ``preprocess``) are left to Hydra.
    """
    from hydra import compose, initialize_config_module
    from omegaconf import DictConfig, OmegaConf

    overrides = [a for a in args if "=" in a and not a.startswith(("-", "+", "~", "hydra"))]
    top = [a.split("=", 1)[0] for a in overrides if "." not in a.split("=", 1)[0]]
    dotted = [a.split("=", 1)[0] for a in overrides if "." in a.split("=", 1)[0]]
    with initialize_config_module(CONFIG_PATH.removeprefix("pkg://"), version_base="1.3"):
        base = compose(config_name)
        for key in top:  # a top-level key or a group selection (lam=fixed): either way a key of the composed config
            if key not in base.keys():  # keys(), not `in`: a mandatory value (???) is a key that `in` calls absent
                return _unknown(key, key, "the config", [str(k) for k in base])
        if not dotted:
            return None
        try:
            cfg = compose(config_name, overrides=[a for a in overrides if "." not in a.split("=", 1)[0]])
        except Exception:  # a bad selection: Hydra's own message says which
            return None
    for key in dotted:
        node: Any = cfg
        parts = key.split(".")
        for depth, part in enumerate(parts):
            if not isinstance(node, DictConfig) or (len(node) == 0 and depth > 0):
                break  # a value or an open mapping: anything goes below it
            if part not in node.keys():
                return _unknown(key, part, ".".join(parts[:depth]) or "the config", [str(k) for k in node], parts[:depth])
            if OmegaConf.is_missing(node, part):
                break  # a mandatory value (???): a value, nothing below it to check
            node = node[part]
    return None


def _unknown(key: str, part: str, section: str, known: list[str], prefix: list[str] | None = None) -> str:
    """The one-line message for a misspelled key: where, what is known there, and the closest known key."""
    import difflib

    close = difflib.get_close_matches(part, known, n=1)
    hint = f" Did you mean {'.'.join([*(prefix or []), close[0]])}?" if close else ""
    return f"Unknown key {part!r} in {section} ({key}); known keys: {sorted(known)}.{hint}"


def clean_errors(task: Callable[[DictConfig], Any]) -> Callable[[DictConfig], Any]:
    """Print ``error: <message>`` and exit 2 on a :class:`FlexLAMError` (a user error) instead of a stack trace.

    Anything else is a bug and keeps its traceback. ``FLEXLAM_DEBUG=1`` re-raises user errors too.
    """

    @functools.wraps(task)
    def wrapper(cfg: DictConfig) -> Any:
        _plain_warnings()
        keep_freed_memory()  # in the process that runs the task (a joblib or DDP worker too), not only the launcher
        try:
            return task(cfg)
        except KeyboardInterrupt:
            print("\ninterrupted; the last checkpoint is kept (rerun with the same run_dir to resume).", file=sys.stderr)
            sys.exit(130)
        except FlexLAMError as exc:
            _drop_empty_run_dir()
            if os.environ.get("FLEXLAM_DEBUG"):
                raise
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)
        except BaseException:
            _drop_empty_run_dir()
            raise
        finally:
            _drop_empty_logs()

    return wrapper


def _drop_empty_logs() -> None:
    """No empty ``<job>.log`` left in a run folder: the tools print, and a config that keeps Hydra's file logging (the
    quickstart's: its measured config is fixed byte for byte) would otherwise leave one behind."""
    try:
        out = run_dir()
    except ValueError:  # not under Hydra
        return
    for log in out.glob("*.log") if out.is_dir() else []:
        if log.is_file() and log.stat().st_size == 0:
            log.unlink(missing_ok=True)


def _plain_warnings() -> None:
    r"""Print :class:`FlexLAMWarning`\ s as one ``warning:`` line (no file, line or echoed source)."""
    import warnings

    default = warnings.showwarning
    if getattr(default, "plain_flexlam", False):
        return

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001 - warnings' own signature
        if issubclass(category, FlexLAMWarning):
            print(f"warning: {message}", file=file or sys.stderr, flush=True)
        else:
            default(message, category, filename, lineno, file, line)

    show.plain_flexlam = True  # type: ignore[attr-defined]
    warnings.showwarning = show


def _drop_empty_run_dir() -> None:
    """A job that failed before writing anything leaves no run folder behind (Hydra makes it before the job runs)."""
    import shutil

    try:
        out = run_dir()
    except ValueError:  # not under Hydra
        return
    if not out.is_dir() or out.resolve() == Path.cwd().resolve():
        return
    if all(entry.name == ".hydra" or entry.suffix == ".log" for entry in out.iterdir()):
        shutil.rmtree(out, ignore_errors=True)
