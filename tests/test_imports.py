"""Importing grpo-rm changes nothing global: not the matplotlib backend, logging, warnings filters or threads.

Two checks: no module of the package calls what changes that state where it is imported (module level, read
from the source), and a fresh interpreter that imports the package's entry points keeps the user's settings."""

import ast
import json
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "grpo_rm"
# Calls that change process-wide state: allowed inside functions that a command runs (cli.main configures logging
# for the command line), never where a module is imported.
GLOBAL_STATE_CALLS = {"filterwarnings", "simplefilter", "basicConfig", "use", "set_num_threads",
                      "set_num_interop_threads", "set_default_dtype", "setLevel", "disable_progress_bars",
                      "set_verbosity_error", "disable_progress_bar", "manual_seed", "set_seed"}


def module_level_calls(tree: ast.Module) -> list[tuple[int, str]]:
    """Calls made when the module is imported: outside function bodies (class bodies and `if` blocks included)."""
    calls = []
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            calls.append((node.lineno, name))
        stack.extend(ast.iter_child_nodes(node))
    return calls


def test_no_module_changes_global_state_when_imported():
    for path in PACKAGE.rglob("*.py"):
        for line, name in module_level_calls(ast.parse(path.read_text())):
            assert name not in GLOBAL_STATE_CALLS, f"{path}:{line} calls {name} when imported"


def test_the_scan_sees_module_level_calls():
    tree = ast.parse("import warnings\nwarnings.simplefilter('ignore')\ndef f():\n    warnings.filterwarnings('x')\n")
    assert module_level_calls(tree) == [(2, "simplefilter")]


# In a fresh interpreter: the user's own settings first, then the package's entry points (what `grpo-rm` and
# `import grpo_rm` load; the rest is imported on first use and checked by the scan above).
PROBE = """
import json, logging, warnings
import matplotlib
matplotlib.use("svg")  # the user's choice, e.g. a notebook's inline backend
import torch
torch.set_num_threads(1)
import accelerate, matplotlib.figure, huggingface_hub  # libraries the entry points load, with filters of their own
before = list(warnings.filters)
import grpo_rm, grpo_rm.cli, grpo_rm.reporting
root = logging.getLogger()
print(json.dumps({"backend": matplotlib.get_backend(), "handlers": len(root.handlers), "level": root.level,
                  "threads": torch.get_num_threads(), "new_filters": [str(f) for f in warnings.filters
                                                                     if f not in before]}))
"""


def test_importing_the_entry_points_keeps_the_users_settings():
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    state = json.loads(result.stdout.splitlines()[-1])
    assert state == {"backend": "svg", "handlers": 0, "level": 30, "threads": 1, "new_filters": []}
