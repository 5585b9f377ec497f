"""Data: transitions from local Minari datasets and videos, their splits and batches, and collecting new datasets."""

from ..errors import DataError
from .transitions import (
    DataConfig,
    TransitionData,
    TransitionSet,
    eval_batches,
    load_transitions,
    split_sources,
    step_loader,
)

__all__ = ["DataConfig", "DataError", "TransitionData", "TransitionSet", "eval_batches", "load_transitions", "split_sources",
           "step_loader"]
