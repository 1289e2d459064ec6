"""The ``grpo-rm`` commands, one module each: ``build_parser()``, ``main(args)``, and the functions it calls,
which a user can call from Python (``run_training``, ``evaluate_run``, ``run_comparison`` ...).

Modules are imported when their command runs, so ``grpo-rm --help`` and ``grpo-rm env`` start fast; their
one-line descriptions live here for that reason.
"""

from __future__ import annotations

import importlib
from typing import NamedTuple
from types import ModuleType


class Command(NamedTuple):
    module: str  # in this package
    help: str


# in the order ``grpo-rm --help`` lists them
COMMANDS = {
    "train": Command("train", "post-train an encoder with GRPO-RM or cross-entropy"),
    "eval": Command("evaluate", "evaluate a saved run on a dataset's test split"),
    "knn": Command("knn", "weighted kNN top-1 of an encoder's frozen features"),
    "linear-probe": Command("linear_probe", "softmax-regression top-1 of an encoder's frozen features "
                                            "(grid-searched)"),
    "wise-ft": Command("wise_ft", "WiSE-FT: a run's encoder weights mixed with the pretrained ones, a run directory "
                                  "per mixing weight alpha"),
    "compare": Command("compare", "frozen / cross-entropy / GRPO-RM (and variants) over seeds, with tables, "
                                  "curves and a report"),
    "visualize": Command("visualize", "a Figure-2-style grid of segmentation predictions of one or more runs"),
    "demo": Command("demo", "GRPO-RM vs cross-entropy offline: embedded digits (a small DINOv2 stand-in), or "
                            "MiniLM on texts"),
    "env": Command("env", "the versions, platform and devices to paste into a bug report"),
}


def command_module(name: str) -> ModuleType:
    return importlib.import_module(f"{__name__}.{COMMANDS[name].module}")


__all__ = ["COMMANDS", "Command", "command_module"]
