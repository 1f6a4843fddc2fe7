"""The import structure of ``studies/``: no cycles, no imports hidden inside functions.

Function-local imports hide dependencies (and cycles); the only ones allowed
are lazy imports of torch and stylecore in ``studies/workers/``, so that a
process that never runs a job does not load models, and test stand-ins can
replace stylecore modules.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

STUDIES = Path(__file__).resolve().parent.parent / "studies"
LAZY_ALLOWED_IN = "studies.workers"
LAZY_ALLOWED = ("torch", "stylecore")


@functools.cache
def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(STUDIES.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        parts = list(path.relative_to(STUDIES.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _resolve(module: str, path: Path, node: ast.ImportFrom | ast.Import) -> list[str]:
    """Absolute names a node imports: ``from x import y`` gives ``x`` then ``x.y`` (a module or not)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    if node.level:
        base = package.split(".")
        base = base[: len(base) - node.level + 1]
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module or ""
    # ``from package import submodule`` depends on the submodule; the package is its parent, already importing.
    submodules = [f"{prefix}.{a.name}" for a in node.names if f"{prefix}.{a.name}" in _modules()]
    return submodules if len(submodules) == len(node.names) else [prefix] + submodules


def _imports(module: str, path: Path) -> tuple[set[str], list[tuple[int, str]]]:
    """(module-level imports, [(line, name) of imports inside functions])."""
    tree = ast.parse(path.read_text(), filename=str(path))
    top: set[str] = set()
    local: list[tuple[int, str]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                names = _resolve(module, path, child)
                if in_function:
                    local.extend((child.lineno, n) for n in (names[:1] if isinstance(child, ast.ImportFrom) else names))
                elif not _type_checking_only(child, tree):
                    top.update(names)
            visit(child, in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda))

    visit(tree, False)
    return top, local


def _type_checking_only(node: ast.AST, tree: ast.Module) -> bool:
    for block in ast.walk(tree):
        if isinstance(block, ast.If) and getattr(block.test, "id", getattr(block.test, "attr", "")) == "TYPE_CHECKING":
            if any(node is n for stmt in block.body for n in ast.walk(stmt)):
                return True
    return False


def _cycles(graph: dict[str, list[str]]) -> list[str]:
    """Every back edge of a depth-first walk, as ``a -> b -> a``."""
    state: dict[str, int] = {}
    cycles = []

    def walk(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in graph[node]:
            if state.get(dep) == 1:
                cycles.append(" -> ".join(stack[stack.index(dep):] + [dep]))
            elif dep not in state:
                walk(dep, stack + [dep])
        state[node] = 2

    for module in graph:
        if module not in state:
            walk(module, [module])
    return cycles


def test_no_function_local_imports_of_project_code():
    """Only studies/workers/ may import torch or stylecore inside a function; nobody imports studies there."""
    offences = []
    for module, path in _modules().items():
        _, local = _imports(module, path)
        for line, name in local:
            root = name.split(".")[0]
            lazy_ok = module.startswith(LAZY_ALLOWED_IN) and root in LAZY_ALLOWED
            if root in ("studies", "config", "stylecore", "torch") and not lazy_ok:
                offences.append(f"{path.relative_to(STUDIES.parent)}:{line} imports {name}")
    assert offences == [], "\n".join(offences)


def test_no_import_cycles():
    """The module-level import graph of studies/ is acyclic."""
    modules = _modules()
    graph = {}
    for module, path in modules.items():
        top, _ = _imports(module, path)
        graph[module] = sorted({n for n in top if n in modules} - {module})
    # A package's __init__ importing its own submodules is how packages work, not a cycle.
    for module, deps in graph.items():
        graph[module] = [d for d in deps if not d.startswith(module + ".") or modules[module].name != "__init__.py"]
    cycles = _cycles(graph)
    assert cycles == [], "\n".join(cycles)


def test_the_checks_can_fail(tmp_path):
    """The scanner sees a function-local import and a two-module cycle."""
    a = tmp_path / "a.py"
    a.write_text("from studies import tasks\n\ndef f():\n    from studies.c import d\n")
    top, local = _imports("studies.a", a)
    assert top == {"studies.tasks"} and local == [(4, "studies.c")]
    assert _cycles({"studies.a": ["studies.b"], "studies.b": ["studies.a"]}) == ["studies.a -> studies.b -> studies.a"]
