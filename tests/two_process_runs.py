"""Run under ``torchrun --nproc_per_node 2``: every `grpo-rm` command line given (a JSON list of argument lists)
in turn, in one launch and one process group, so that the distributed tests pay for starting two processes once.
The commands run as ``grpo-rm`` runs them, but the process group ends only after the last one."""

import json
import sys

from grpo_rm.commands import command_module
from grpo_rm.runtime import end_process_group

if __name__ == "__main__":
    try:
        for name, *arguments in json.loads(sys.argv[1]):
            command = command_module(name)
            command.main(command.build_parser().parse_args(arguments))
    finally:
        end_process_group()
