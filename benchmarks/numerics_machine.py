"""Does the same code train the same weights on another machine? The golden numerics run, on this machine, against
the values tests/golden/numerics.json records (made on the machine of the session that recorded them).

    python benchmarks/numerics_machine.py [--out benchmarks/results/numerics_machine]

Each machine kind that runs it adds a unit (<out>/units/<cpu>.json); the report lists them all beside the recorded
golden values: bit-identical or not, and the largest relative difference.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
from pathlib import Path

from flexlam_rl._version import NUMERICS_VERSION
from flexlam_rl.bench.experiment import Experiment, machine
from flexlam_rl.bench.numerics import golden_values
from flexlam_rl.tables import markdown_table

GOLDEN = Path("tests/golden/numerics.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/numerics_machine"))
    args = parser.parse_args()
    exp = Experiment(args.out, "benchmarks/numerics_machine.py")
    golden = json.loads(GOLDEN.read_text())[str(NUMERICS_VERSION)]

    def run() -> dict:
        with tempfile.TemporaryDirectory() as tmp:
            return {"numerics_version": NUMERICS_VERSION, **golden_values(Path(tmp))}

    here = machine()
    exp.unit(re.sub(r"[^A-Za-z0-9]+", "-", f"{here['cpu']} {here['capability']}").strip("-").lower(), run)
    rows, units = [], exp.saved()
    for unit in units:
        pairs = [(unit["heldout_mse"][k], v) for k, v in golden["heldout_mse"].items()]
        pairs.append((unit["weights_abs_sum"], golden["weights_abs_sum"]))
        unit["max_relative_difference"] = max(abs(a - b) / abs(b) for a, b in pairs)
        unit["identical_to_golden"] = all(a == b for a, b in pairs)
        cpu = f"{unit['machine']['cpu']} ({unit['machine'].get('capability', '?')})"
        rows.append([cpu, unit["code"]["commit"][:10], f"{unit['weights_abs_sum']:.10f}",
                     "yes" if unit["identical_to_golden"] else "no", f"{unit['max_relative_difference']:.1e}"])
    text = "\n".join(["# The golden numerics run by machine", "", f"`{exp.command}`", "",
                      f"Recorded golden values (NUMERICS_VERSION {NUMERICS_VERSION}, {GOLDEN}): weights' absolute sum "
                      f"{golden['weights_abs_sum']:.10f}.", "",
                      markdown_table(["CPU", "code", "weights' absolute sum", "bit-identical to the golden values",
                                      "largest relative difference"], rows), ""])
    exp.write({"golden": golden, "units": units}, text)
    print(text)


if __name__ == "__main__":
    main()
