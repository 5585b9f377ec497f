"""User-facing errors: each message names the problem and the fix.

The command-line tools print a :class:`FlexLAMError` as one ``error:`` line and exit 2; any
other exception is a bug and keeps its traceback. ``FlexLAMError`` subclasses ``ValueError``
so code that caught the old ``ValueError``s keeps working.
"""

from __future__ import annotations


class FlexLAMError(ValueError):
    """Bad input, config, data or state that the user can fix; the message says how."""


class ConfigError(FlexLAMError):
    """A config (from a file, a checkpoint or Hydra) is malformed; the message says which key."""


class CheckpointError(FlexLAMError):
    """A checkpoint cannot be loaded; the message says what is wrong and how to fix it."""


class DataError(FlexLAMError):
    """A dataset cannot be used as asked; the message says why and what to do."""


class DatasetExistsError(DataError, FileExistsError):
    """A dataset id is already taken and the caller asked not to overwrite it."""


class VideoError(DataError):
    """A video source cannot be used; the message names the file and the fix."""


class TrainingDiverged(FlexLAMError, RuntimeError):
    """The loss became NaN/inf; the last good checkpoint is kept."""


class FlexLAMWarning(UserWarning):
    """Something worth a user's attention that does not stop the run (a collapsed code, a costly frame size).

    The command-line tools print these as one ``warning:`` line, without Python's source-line echo."""
