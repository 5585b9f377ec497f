"""Text of the README and the docs that states numbers, generated from the committed results, never typed by hand.

    python docs/_ext/generated.py            # rewrite every block from the results
    python docs/_ext/generated.py --check    # exit 1 naming each block the results no longer give (tests/test_docs.py)

A block is what lies between ``<!-- generated: NAME -->`` and ``<!-- end generated -->`` in README.md or a page
under docs/; ``BLOCKS[NAME]`` writes it from results files under ``benchmarks/results``. What a block says (which
games pass a bar, which fall below chance) is decided from the numbers too, so a new result changes the words with
the figures.
"""

from __future__ import annotations

import json
import re
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"(<!-- generated: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- end generated -->)", re.S)
BAR = 0.85  # the games suite's bar: the translator's best budget at this share of the same-labels IDM
NAMES = {"breakout": "Breakout", "pong": "Pong", "freeway": "Freeway", "procgen-coinrun": "CoinRun",
         "procgen-bigfish": "BigFish", "procgen-starpilot": "StarPilot"}


def _results(path: str) -> dict:
    return json.loads((ROOT / path).read_text())


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _majority_action(game: dict) -> str:
    """The name of the commonest true action on the held-out transitions (the confusion matrix's largest row)."""
    import numpy as np

    row = int(np.asarray(game["translator_confusion"]).sum(1).argmax())
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from games import action_names

    return action_names(game["task"])[row]


def games_suite() -> str:
    """README, Games: each game of the suite read against the same-labels IDM, the majority rate and as balanced
    accuracy (``benchmarks/results/games/results.json``)."""
    games = _results("benchmarks/results/games/results.json")["games"]
    best = {g["task"]: g["translator_accuracy"][str(g["best_k"])] for g in games}
    used = {g["task"]: g["perplexity"][0] > 1.1 and g["controllability"]["8"] > 0.05 for g in games}
    text = ["On every game of the suite (`benchmarks/results/games/`, one seed each), translator accuracy from 2% "
            "labels is compared with a supervised IDM on the same labels, with the majority-class rate (always "
            "answering the commonest action) beside it and as balanced accuracy (each action's recall averaged, which "
            "a constant answer cannot inflate)."]
    clean = [g for g in games if used[g["task"]] and best[g["task"]] > g["majority_rate"] < g["idm_accuracy"]
             and min(g["translator_over_idm"], g["balanced_over_idm"]) >= BAR]
    if clean:
        text.append(f"{_and([NAMES[g['task']] for g in clean])} reach{'es' if len(clean) == 1 else ''} {BAR} of the IDM "
                    f"either way (balanced {_and([format(g['balanced_over_idm'], '.2f') for g in clean])} of it).")
    for g in games:
        name, rest = NAMES[g["task"]], g not in clean and used[g["task"]]
        if rest and best[g["task"]] <= g["majority_rate"]:
            text.append(f"{name}'s translator ({best[g['task']]:.3f}) does not beat always answering "
                        f"{_majority_action(g)} ({g['majority_rate']:.3f}); balanced, it is {g['balanced_over_idm']:.2f} of "
                        f"the IDM ({g['translator_balanced_best']:.3f} vs {g['idm_balanced']:.3f}), "
                        f"{'still above' if g['balanced_over_idm'] >= BAR else 'below'} the bar.")
        elif rest and g["idm_accuracy"] <= g["majority_rate"]:
            text.append(f"{name}'s code is used, barely (controllability {g['controllability']['8']:.2f}), and its "
                        f"translator beats an IDM that sits at the majority rate ({g['idm_accuracy']:.3f} vs "
                        f"{g['majority_rate']:.3f}), so that ratio says nothing.")
        elif rest and g["translator_over_idm"] >= BAR > g["balanced_over_idm"]:
            weak = (", against an IDM that is itself weak (many of Procgen's 15 actions do the same thing there)"
                    if g["task"].startswith("procgen-") else "")
            text.append(f"{name} reaches {g['translator_over_idm']:.2f} in accuracy but {g['balanced_over_idm']:.2f} "
                        f"balanced{weak}, so it misses the bar.")
    unused = [g for g in games if not used[g["task"]]]
    if unused:
        text.append(f"The code of {_and([NAMES[g['task']] for g in unused])} goes unused (controllability "
                    f"{_and([format(g['controllability']['8'], '.2f') for g in unused])} at k = 8).")
    return "\n".join(textwrap.wrap(" ".join(text), 118)) + "\n"


BLOCKS: dict[str, Callable[[], str]] = {"games-suite": games_suite}
FILES = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").rglob("*.md") if "_build" not in p.parts)]


def stale(write: bool = False) -> list[str]:
    """``file: block`` for every block whose text is not what its results give (rewritten when ``write``)."""
    out = []
    for name in FILES:
        path = ROOT / name
        text = path.read_text()

        def fill(match: re.Match, file: str = name) -> str:
            if match["name"] not in BLOCKS:
                raise SystemExit(f"{file}: unknown generated block {match['name']!r}; known: {sorted(BLOCKS)}")
            body = BLOCKS[match["name"]]()
            if body != match["body"]:
                out.append(f"{file}: {match['name']}")
            return match.group(1) + body + match.group(4)

        new = BLOCK.sub(fill, text)
        if write and new != text:
            path.write_text(new)
    return out


if __name__ == "__main__":
    check = "--check" in sys.argv[1:]
    changed = stale(write=not check)
    print("\n".join(changed) or "every generated block is current")
    sys.exit(1 if check and changed else 0)
