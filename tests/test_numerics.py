"""The golden numerics run: a tiny fixed pretraining whose held-out error and weights are committed per
``NUMERICS_VERSION`` (tests/golden/numerics.json). A change that moves trained or scored numbers fails here until
the version is bumped (so every cache keyed on it is retrained) and the values are renewed in the same commit:

    python tests/test_numerics.py --renew     # refuses to overwrite the values of a version already recorded

Compared at a relative tolerance of 1e-4, not bit for bit: a different CPU's vector kernels may round the last
bits differently, while a real change of numerics (initialization, a loss, batching, evaluation) moves these
numbers by far more after 40 updates. The weight digest is recorded too, to say when a run was bit-identical.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import pytest

from flexlam_rl.bench.numerics import golden_values

GOLDEN = Path(__file__).resolve().parent / "golden" / "numerics.json"
TOLERANCE = 1e-4


def recorded() -> dict[str, dict[str, object]]:
    return json.loads(GOLDEN.read_text()) if GOLDEN.is_file() else {}


def test_training_numerics_match_the_golden_values_of_this_numerics_version(tmp_path: Path) -> None:
    from flexlam_rl._version import NUMERICS_VERSION

    golden = recorded().get(str(NUMERICS_VERSION))
    assert golden is not None, f"No golden values for NUMERICS_VERSION {NUMERICS_VERSION}: run python tests/test_numerics.py --renew"
    got = golden_values(tmp_path)
    assert got["transitions"] == golden["transitions"], "the golden data changed (collection, not training numerics)"
    moved = {k: (got["heldout_mse"][k], v) for k, v in golden["heldout_mse"].items()
             if got["heldout_mse"][k] != pytest.approx(v, rel=TOLERANCE)}
    if got["weights_abs_sum"] != pytest.approx(golden["weights_abs_sum"], rel=TOLERANCE):
        moved["weights_abs_sum"] = (got["weights_abs_sum"], golden["weights_abs_sum"])
    assert not moved, (f"Training numerics moved under NUMERICS_VERSION {NUMERICS_VERSION} (got, golden): {moved}. Bump "
                       f"NUMERICS_VERSION in flexlam_rl/_version.py (cached models and benchmark seeds are keyed on it) and run "
                       f"python tests/test_numerics.py --renew in the same commit.")


def renew() -> None:
    """Record this code's values under the current version; a version already recorded with other values is refused."""
    sys.path.insert(0, str(GOLDEN.parents[2]))
    from flexlam_rl._version import NUMERICS_VERSION

    with tempfile.TemporaryDirectory() as tmp:
        values = golden_values(Path(tmp))
    history = recorded()
    old = history.get(str(NUMERICS_VERSION))
    if old is not None and any(values["heldout_mse"][k] != pytest.approx(v, rel=TOLERANCE) for k, v in old["heldout_mse"].items()):
        sys.exit(f"NUMERICS_VERSION {NUMERICS_VERSION} already has other golden values: bump it in flexlam_rl/_version.py first.")
    history[str(NUMERICS_VERSION)] = values
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps(history, indent=2, sort_keys=True) + "\n")
    print(f"golden values of NUMERICS_VERSION {NUMERICS_VERSION}: {values}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--renew"]:
        sys.exit("usage: python tests/test_numerics.py --renew")
    renew()
