"""The one-way import rule (issue 14), checked by walking every ``import`` in src/faceprint
with ``ast`` -- module level and inside functions alike, since a lazy import is still a
dependency (imports under ``if TYPE_CHECKING:`` are annotations, not dependencies):

* ``faceprint.metrics`` is the ground floor: it imports no faceprint module but ``errors``;
* the runtime (``engine``, ``library.cluster``) and the detectors (``liveness``) do not
  import the evaluation package, and no domain package imports the CLI;
* no import circle exists among the modules, except the ones still listed in
  ``KNOWN_CIRCLES`` -- each names the issue-14 step that removes it, and the test fails if a
  listed circle is gone (so the list only shrinks) or a new one appears."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "faceprint"

#: circles still allowed, each the set of modules in one circle (the list only shrinks; the last,
#: the CLI's with the */cli_commands.py modules, went when the CLI package landed)
KNOWN_CIRCLES: set[frozenset[str]] = set()


def _modules() -> dict[str, Path]:
    out = {}
    for path in PKG.rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _runtime_nodes(tree: ast.AST):
    """Every node but those under ``if TYPE_CHECKING:`` (annotations only: no import at run time)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                todo.extend(child.orelse)
                continue
            todo.append(child)


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    pkg = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    deps: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = pkg.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        for t in targets:
            while t and t not in modules and "." in t:
                t = t.rsplit(".", 1)[0]
            if t in modules and t != name and t != "faceprint":
                deps.add(t)
    return deps


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _circles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: set[frozenset[str]] = set()
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.add(frozenset(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_metrics_is_the_ground_floor() -> None:
    graph = _graph()
    for name, deps in graph.items():
        if name.startswith("faceprint.metrics"):
            outside = {d for d in deps if not d.startswith("faceprint.metrics") and d != "faceprint.errors"}
            assert not outside, f"{name} imports {sorted(outside)}: metrics may import only faceprint.errors"


def test_runtime_and_detectors_do_not_import_evaluation_or_the_cli() -> None:
    graph = _graph()
    for name in ("faceprint.engine", "faceprint.library.cluster", "faceprint.liveness.pad", "faceprint.liveness.synthetic"):
        bad = {d for d in graph[name] if d.startswith("faceprint.evaluation")}
        assert not bad, f"{name} imports {sorted(bad)}"
    for name, deps in graph.items():
        if not name.startswith("faceprint.cli") and not name.endswith("cli_commands"):
            assert "faceprint.cli" not in deps, f"{name} imports faceprint.cli"


def test_no_import_circles_but_the_known_ones() -> None:
    circles = _circles(_graph())
    new = circles - KNOWN_CIRCLES
    gone = KNOWN_CIRCLES - circles
    assert not new, f"new import circle(s): {[sorted(c) for c in new]}"
    assert not gone, f"circle(s) removed: take them off KNOWN_CIRCLES: {[sorted(c) for c in gone]}"


def test_the_walker_sees_a_lazy_circle(tmp_path: Path) -> None:
    """The check can fail: two modules importing each other inside functions are one circle."""
    assert _circles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == {frozenset({"a", "b"})}
