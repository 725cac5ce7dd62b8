"""The import graph of ``colorjax``, read from the source with ``ast`` (imports inside functions
included): no cycles between modules, and no module imports a package of a higher layer."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "colorjax"

# Layers from the bottom up: a part may import its own layer's parts (without cycles) and the layers
# below it, never a layer above. The order follows one image through the library:
# image -> Lab -> bins -> model -> checkpoint -> inference -> evaluation -> training -> commands.
LAYERS = (
    ("color", "safe_files", "validation", "memory"),  # sRGB <-> Lab; atomic writes, capped reads; numeric argument rules; memory estimates
    ("bins", "decode", "hints", "grids"),  # ab bins and their decoding, colour hints, picture grids
    ("prior", "metrics"),  # the colour prior, the metrics
    ("models", "data"),  # networks and heads; datasets and loaders
    ("checkpointing",),  # saving and restoring every kind of module
    ("convert", "inference"),  # PyTorch weights in; colorizing files and arrays
    ("evaluation",),  # metrics over a split, reports and tables
    ("training",),  # the training run
    ("demo", "cli", "__init__"),  # the commands and the package's lazy entry points
)
LAYER_OF = {part: level for level, parts in enumerate(LAYERS) for part in parts}


def _module_name(path: Path) -> str:
    parts = ["colorjax", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """module -> the colorjax modules (or packages) it imports."""
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                graph[name] |= {alias.name for alias in node.names if alias.name.split(".")[0] == "colorjax"}
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: climb from this module's package
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if target.split(".")[0] != "colorjax":
                    continue
                for alias in node.names:  # `from colorjax.models import vgg16` imports a module
                    graph[name].add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in modules else target)
    return {name: {t for t in targets if t != name} for name, targets in graph.items()}


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in graph:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_part_of_the_package_has_a_layer():
    parts = {_part(module) for module in _import_graph()}
    assert parts <= set(LAYER_OF), f"add to LAYERS: {sorted(parts - set(LAYER_OF))}"


def test_the_import_graph_has_no_cycle():
    assert _cycles(_import_graph()) == []


def test_no_module_imports_a_higher_layer():
    upward = sorted(
        f"{module} (layer {LAYER_OF[_part(module)]}) imports {target} (layer {LAYER_OF[_part(target)]})"
        for module, targets in _import_graph().items()
        for target in targets
        if LAYER_OF[_part(target)] > LAYER_OF[_part(module)]
    )
    assert upward == []


def test_the_checker_sees_a_cycle_and_an_upward_import():
    """The checks above can fail: a two-module cycle and a model importing checkpointing are found."""
    graph = {"colorjax.models.vgg16": {"colorjax.checkpointing"}, "colorjax.checkpointing": {"colorjax.models.vgg16"}}
    assert _cycles(graph) == [["colorjax.checkpointing", "colorjax.models.vgg16"]]
    assert LAYER_OF[_part("colorjax.checkpointing")] > LAYER_OF[_part("colorjax.models.vgg16")]
