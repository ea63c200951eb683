"""The package's import graph has no cycle, lazy imports inside functions included."""
from __future__ import annotations

import ast
from importlib import resources
from pathlib import Path

import vidssl

PACKAGE_ROOT = Path(vidssl.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE_ROOT.rglob("*.py")}


def _imported(name: str, path: Path, known: set[str]) -> set[str]:
    """Every vidssl module that ``name`` imports anywhere in its file (top level or lazily)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                       for alias in node.names]
        else:
            continue
        for target in targets:
            parts = target.split(".")
            # the target itself and every package __init__ that importing it runs, except the
            # importer's own packages (a sibling import inside a package is not a cycle)
            for i in range(1, len(parts) + 1):
                module = ".".join(parts[:i])
                if module in known and module != name and not name.startswith(module + "."):
                    found.add(module)
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_import_walk_sees_lazy_imports():
    modules = _modules()
    pretrain = _imported("vidssl.pretrain", modules["vidssl.pretrain"], set(modules))
    assert "vidssl.models" in pretrain  # imported inside build_method only
    assert {"vidssl.config", "vidssl.methods", "vidssl.engine"} <= pretrain


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_among_vidssl_modules():
    modules = _modules()
    graph = {name: _imported(name, path, set(modules)) for name, path in modules.items()}
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_bundled_configs_are_package_data():
    configs = resources.files("vidssl") / "configs"
    assert sorted(p.name for p in configs.iterdir() if p.is_dir()) == ["evaluate", "pretrain"]
    assert (configs / "evaluate" / "severe.yaml").is_file()
