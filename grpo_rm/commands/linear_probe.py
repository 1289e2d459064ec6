"""``grpo-rm linear-probe``: softmax-regression top-1 of an encoder's frozen features, grid-searched on
validation."""

from __future__ import annotations

import argparse

from .frozen_features import frozen_feature_parser, run_frozen_feature_command
from . import COMMANDS

HELP = COMMANDS["linear-probe"].help


def build_parser() -> argparse.ArgumentParser:
    return frozen_feature_parser("linear-probe", HELP, ["probe_learning_rates", "probe_weight_decays", "probe_epochs"],
                                 {"probe_learning_rates": ["learning_rates"], "probe_weight_decays": ["weight_decays"],
                                  "probe_epochs": ["epochs"]})


def main(args: argparse.Namespace) -> None:
    run_frozen_feature_command(args, "linear_probe")
