"""Environments for flexlam-rl: pixel wrappers, named tasks, scripted behaviours.

Installed as ``flexlam_rl.envs``. Importing it registers ``flexlam/<task>-v0`` ids.
"""

from .experts import BEHAVIOURS, EXPERTS, make_behaviour
from .pixels import (
    ImagePixels,
    MiniGridPixels,
    RenderedPixels,
    apply_preprocess,
    fit_frame,
    preprocessed_shape,
    validate_preprocess,
)
from .tasks import TASKS, Task, get_task, register_tasks, task_at_frame_size

register_tasks()

__all__ = [
    "BEHAVIOURS",
    "EXPERTS",
    "ImagePixels",
    "MiniGridPixels",
    "RenderedPixels",
    "TASKS",
    "Task",
    "apply_preprocess",
    "fit_frame",
    "get_task",
    "make_behaviour",
    "preprocessed_shape",
    "register_tasks",
    "task_at_frame_size",
    "validate_preprocess",
]
