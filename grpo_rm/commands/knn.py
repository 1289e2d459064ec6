"""``grpo-rm knn``: weighted kNN top-1 of an encoder's frozen features on a dataset."""

from __future__ import annotations

import argparse

from .frozen_features import frozen_feature_parser, run_frozen_feature_command
from . import COMMANDS

HELP = COMMANDS["knn"].help


def build_parser() -> argparse.ArgumentParser:
    return frozen_feature_parser("knn", HELP, ["knn_k", "knn_temperature"],
                                 {"knn_k": ["k"], "knn_temperature": ["temperature"]})


def main(args: argparse.Namespace) -> None:
    run_frozen_feature_command(args, "knn")
