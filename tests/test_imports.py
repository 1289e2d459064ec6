"""Importing grpo-rm changes nothing global: not the matplotlib backend, logging, warnings or threads."""

import json
import subprocess
import sys

MODULES = "grpo_rm, grpo_rm.cli, grpo_rm.commands.compare, grpo_rm.reporting, grpo_rm.commands.env"


def run_python(code: str) -> dict:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.splitlines()[-1])


def test_import_keeps_backend_logging_and_threads():
    state = run_python(f"""
import json, logging
import matplotlib
matplotlib.use("svg")  # the user's choice, e.g. a notebook's inline backend
import torch
torch.set_num_threads(1)
import {MODULES}
root = logging.getLogger()
print(json.dumps({{"backend": matplotlib.get_backend(), "handlers": len(root.handlers), "level": root.level,
                  "threads": torch.get_num_threads()}}))
""")
    assert state == {"backend": "svg", "handlers": 0, "level": 30, "threads": 1}


def test_import_adds_no_warning_filters():
    # The libraries grpo-rm uses may add filters of their own: load every module that importing grpo-rm
    # loads, in the same order, so that only grpo-rm's own import is measured.
    libraries = run_python(f"""
import json, sys
import {MODULES}
print(json.dumps([name for name in sys.modules if name.split(".")[0] != "grpo_rm"]))
""")
    added = run_python(f"""
import importlib, json, warnings
for name in {libraries!r}:
    try:
        importlib.import_module(name)
    except ImportError:  # names that extension modules register, such as cython_runtime, are not importable
        pass
before = list(warnings.filters)
import {MODULES}
print(json.dumps([str(f) for f in warnings.filters if f not in before]))
""")
    assert added == []
