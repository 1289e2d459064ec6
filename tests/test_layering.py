"""The package's import graph: arrows point one way, and each layer stays out of the ones above it."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "grpo_rm"


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
                else:
                    target = node.module or ""
                if target.startswith("grpo_rm"):
                    targets.add(target)
            elif isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names if alias.name.startswith("grpo_rm")}
        graph[name] = targets
    return graph


def owner(module: str, graph: dict) -> str:
    """The module file an import names (``grpo_rm.models.heads``), or the package (``grpo_rm.models``)."""
    while module not in graph and "." in module:
        module = module.rsplit(".", 1)[0]
    return module


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


def test_lower_layers_do_not_import_upper_ones():
    graph = imports()
    rules = {
        "grpo_rm.data": ("grpo_rm.models", "grpo_rm.tasks", "grpo_rm.training", "grpo_rm.evaluation"),
        "grpo_rm.models": ("grpo_rm.data", "grpo_rm.tasks", "grpo_rm.training", "grpo_rm.evaluation"),
        "grpo_rm.objective": ("grpo_rm.",),
        "grpo_rm.processing": ("grpo_rm.data", "grpo_rm.models", "grpo_rm.tasks"),
        "grpo_rm.evaluation": ("grpo_rm.tasks", "grpo_rm.training", "grpo_rm.commands"),
        "grpo_rm.tasks": ("grpo_rm.training", "grpo_rm.commands", "grpo_rm.compare", "grpo_rm.representation"),
    }
    for module, targets in graph.items():
        for layer, forbidden in rules.items():
            if module == layer or module.startswith(layer + "."):
                bad = [t for t in targets if t.startswith(forbidden) and not t.startswith(layer)]
                assert not bad, f"{module} imports {bad}"


def test_only_the_task_modules_know_task_names():
    """A new task is one module plus a registry entry: nothing else compares against a task's name."""
    for path in PACKAGE.rglob("*.py"):
        if path.parent.name == "tasks":
            continue
        text = path.read_text()
        for name in ("segmentation", "classification"):
            assert f'== "{name}"' not in text and f"== '{name}'" not in text, f"{path} branches on {name}"
