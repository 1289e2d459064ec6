"""The package's import graph against its layers: every module has a layer, imports point down or sideways
only, there are no cycles, and nothing outside the task modules branches on a task's name.

The layers, bottom to top (docs/configuration.md and the README's layout table describe the modules). They
follow shared/docs/DESIGN.md except where the code has a reason to differ:
- methods sit below config: the config names the methods and their presets (methods/presets.py, next to the
  methods), so it imports them; the methods take plain values and never read a config.
- processing (what an encoder expects of its inputs) sits below both data and models, which both use it.
- representation sits above models (it runs an encoder) and below tasks: it takes data in, never a task.
- reporting sits above models and representation (model cards read a run's encoder and config), below the
  evaluation and tasks that draw their figures with it.
- launchers sit below commands: compare hands them the train command's function to run (or to pickle by name
  for a submitit job), so they never import a command.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "grpo_rm"

LAYERS = [
    ("foundation", ["grpo_rm.files", "grpo_rm.seeding", "grpo_rm.objective", "grpo_rm.metrics", "grpo_rm.runtime"]),
    ("methods", ["grpo_rm.methods"]),
    ("config", ["grpo_rm.config"]),
    ("processing", ["grpo_rm.processing"]),
    ("data", ["grpo_rm.data"]),
    ("models", ["grpo_rm.models"]),
    ("representation", ["grpo_rm.representation"]),
    ("reporting", ["grpo_rm.reporting"]),
    ("evaluation", ["grpo_rm.evaluation"]),
    ("tasks", ["grpo_rm.tasks"]),
    ("training", ["grpo_rm.training"]),
    ("integrations", ["grpo_rm.integrations"]),
    ("launchers", ["grpo_rm.launchers"]),
    ("commands", ["grpo_rm.commands"]),
    ("entry points", ["grpo_rm.cli", "grpo_rm"]),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """module -> grpo_rm modules it imports (relative imports resolved), at any depth of the file."""
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        name = module_name(path)
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                    if not node.module and _is_module(f"{target}.{node.names[0].name}"):
                        target = f"{target}.{node.names[0].name}"  # `from . import steps`: the module steps
                else:
                    target = node.module or ""
                if target.startswith("grpo_rm"):
                    targets.add(target)
            elif isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names if alias.name.startswith("grpo_rm")}
        graph[name] = targets
    return graph


def _is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def layer_of(module: str) -> int:
    """The index of the layer whose longest-matching prefix owns ``module``."""
    best, best_length = None, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_length:
                best, best_length = index, len(prefix)
    assert best is not None, f"{module} is in no layer: add it to LAYERS"
    return best


def owner(module: str, graph: dict) -> str:
    """The module file an import names (``grpo_rm.models.heads``), or the package (``grpo_rm.models``)."""
    while module not in graph and "." in module:
        module = module.rsplit(".", 1)[0]
    return module


def test_the_graph_is_the_package():
    graph = imports()
    assert len(graph) > 40 and "grpo_rm.training.loop" in graph, sorted(graph)
    assert sum(len(targets) for targets in graph.values()) > 100


def test_every_module_has_a_layer():
    for module in imports():
        layer_of(module)


def test_imports_point_down_or_sideways():
    graph = imports()
    for module, targets in graph.items():
        for target in targets:
            assert layer_of(target) <= layer_of(module), (
                f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} ({LAYERS[layer_of(target)][0]}), a "
                "layer above it")


def test_data_never_imports_model_code():
    for module, targets in imports().items():
        if module.startswith("grpo_rm.data"):
            assert not any(t.startswith("grpo_rm.models") for t in targets), f"{module} imports {targets}"


def test_no_import_cycles():
    graph = imports()
    edges = {m: {owner(t, graph) for t in targets} - {m} for m, targets in graph.items()}
    state: dict[str, int] = {}

    def visit(module, path):
        state[module] = 1
        for target in edges.get(module, ()):
            assert state.get(target) != 1, f"import cycle: {' -> '.join(path + [target])}"
            if target not in state:
                visit(target, path + [target])
        state[module] = 2

    for module in edges:
        if module not in state:
            visit(module, [module])


def task_names() -> set[str]:
    from grpo_rm.tasks import TASKS

    return {name for task in TASKS.values() for name in (task.name, *task.aliases)}


def compared_strings(tree: ast.AST) -> list[tuple[int, str]]:
    """String constants compared with ==, !=, in, not in (also inside a tuple, list or set operand)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for operand in [node.left, *node.comparators]:
                items = operand.elts if isinstance(operand, (ast.Tuple, ast.List, ast.Set)) else [operand]
                found += [(node.lineno, item.value) for item in items
                          if isinstance(item, ast.Constant) and isinstance(item.value, str)]
    return found


def test_only_the_task_modules_know_task_names():
    """A new task is one module plus a registry entry: nothing else compares anything with a task's name."""
    names = task_names()
    assert {"image-classification", "segmentation", "text-classification"} <= names
    for path in PACKAGE.rglob("*.py"):
        if path.parent.name == "tasks":
            continue
        for line, value in compared_strings(ast.parse(path.read_text())):
            assert value not in names, f"{path}:{line} compares with the task name {value!r}"


def test_the_task_name_check_catches_a_comparison():
    source = 'if task_class(task).name != "image-classification":\n    pass\nif name in ("segmentation", "x"):\n    pass\n'
    assert [value for _, value in compared_strings(ast.parse(source))] == ["image-classification", "segmentation", "x"]
