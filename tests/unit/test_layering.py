"""The package's layers, read from its import statements (every one: top level, inside
functions, under ``TYPE_CHECKING``): hooks/ knows no integration, llm/ knows no hook, adapters
know no hook machinery, and hooks/ has no import cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "tlm_hooks"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every tlm_hooks module ``path`` imports (relative imports resolved)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.add(target)
            out.update(f"{target}.{alias.name}" for alias in node.names)  # `from . import x` imports a module
    return {m for m in out if m == "tlm_hooks" or m.startswith("tlm_hooks.")}


def _modules(package: str) -> dict[str, set[str]]:
    folder = ROOT.joinpath(*package.split(".")[1:])
    return {_module_name(p): _imports(p) for p in sorted(folder.rglob("*.py"))}


def _offenders(package: str, forbidden: str) -> list[str]:
    return sorted(
        f"{module} imports {target}"
        for module, targets in _modules(package).items()
        for target in targets
        if target == forbidden or target.startswith(forbidden + ".")
    )


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("tlm_hooks.hooks", "tlm_hooks.integrations"),
        ("tlm_hooks.llm", "tlm_hooks.hooks"),
        ("tlm_hooks.adapters", "tlm_hooks.hooks"),
        ("tlm_hooks.scorers", "tlm_hooks.hooks"),
    ],
)
def test_a_layer_does_not_import_the_one_above(package: str, forbidden: str) -> None:
    assert _offenders(package, forbidden) == []


def test_the_checker_sees_relative_imports_and_imports_inside_functions() -> None:
    # the integration that hooks LlamaIndex sits above the hooks, and says so in both forms
    assert "tlm_hooks.hooks.config" in _imports(ROOT / "integrations" / "llamaindex" / "patching.py")
    assert "tlm_hooks.scorers.tlm" in _imports(ROOT / "hooks" / "api.py")  # imported inside _scorer_for


def test_the_recursion_guard_is_a_leaf() -> None:
    assert _imports(ROOT / "_guard.py") == set()


def test_no_import_cycle_inside_hooks() -> None:
    graph = {
        m: {t for t in targets if t in _modules("tlm_hooks.hooks") and t != m}
        for m, targets in _modules("tlm_hooks.hooks").items()
    }
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target] if target in path else [module, target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []
    assert "tlm_hooks.hooks.pipeline" not in graph["tlm_hooks.hooks.streams"]
