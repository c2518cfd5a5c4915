"""The package's shape: no import circles, and no arrow that climbs back up (the stages know no
engine, the engine knows no front-end)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "perslm_voice"
# What each layer may not import at module level (a function may import lazily what it needs).
FORBIDDEN = {
    "perslm_voice.audio": ("perslm_voice.tts", "perslm_voice.realtime_loop", "perslm_voice.ui"),
    "perslm_voice.stt": ("perslm_voice.realtime_loop", "perslm_voice.ui", "perslm_voice.cli"),
    "perslm_voice.tts": ("perslm_voice.realtime_loop", "perslm_voice.ui", "perslm_voice.cli"),
    "perslm_voice.llm": ("perslm_voice.realtime_loop", "perslm_voice.ui", "perslm_voice.cli"),
    "perslm_voice.memory": ("perslm_voice.realtime_loop", "perslm_voice.ui", "perslm_voice.cli"),
    "perslm_voice.echo": ("perslm_voice.realtime_loop", "perslm_voice.ui", "perslm_voice.cli"),
    "perslm_voice.realtime_loop": ("perslm_voice.ui", "perslm_voice.cli", "perslm_voice.server"),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, lazy: bool) -> set[str]:
    """Modules ``path`` imports: at module level, and with ``lazy`` inside functions too (never
    under ``if TYPE_CHECKING``)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    nodes = list(ast.walk(tree)) if lazy else tree.body
    typing_only = {
        id(n)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for n in ast.walk(block)
    }
    found = set()
    for node in nodes:
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return {m for m in found if m.startswith("perslm_voice")}


def graph(lazy: bool = False) -> dict[str, set[str]]:
    """Who imports whom; ``__main__`` modules are entry points, outside the layers."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py") if p.name != "__main__.py"}
    return {
        name: {m for m in imports(path, lazy) if m in modules and m != name}
        for name, path in modules.items()
    }


def test_no_import_circles():
    edges = graph(lazy=True)
    # A package imports its own submodules to re-export them: that is not a circle.
    edges = {
        name: {m for m in deps if not (m.startswith(name + ".") and name in m)}
        for name, deps in edges.items()
    }
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(edges.get(node, ())):
            if state.get(dep) == 1:
                cycles.append([*path[path.index(dep) :], dep] if dep in path else [node, dep])
            elif dep not in state:
                visit(dep, [*path, dep])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_no_arrow_climbs_back_up():
    wrong = [
        f"{name} imports {dep}"
        for name, deps in graph().items()
        for layer, forbidden in FORBIDDEN.items()
        if name == layer or name.startswith(layer + ".")
        for dep in deps
        if dep.startswith(forbidden)
    ]
    assert not wrong, "\n".join(wrong)
