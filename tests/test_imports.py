"""The one-way import rule (issue 14), checked by walking every ``import`` in src/faceprint
with ``ast`` -- module level and inside functions alike, since a lazy import is still a
dependency (imports under ``if TYPE_CHECKING:`` are annotations, not dependencies):

* ``faceprint.metrics`` is the ground floor: it imports no faceprint module but ``errors``;
* the runtime (``engine``, ``library.cluster``) and the detectors (``liveness``,
  ``forensics``) do not import the evaluation package, and no package but ``cli`` imports
  ``faceprint.cli``;
* no import circle exists among the modules, nor among the packages (``faceprint.gallery``
  and everything under it count as one), and a package imports only packages on lower floors
  of ``LAYERS`` (the picture in docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "faceprint"


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


def _package(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2])


def test_runtime_and_detectors_do_not_import_evaluation_or_the_cli() -> None:
    graph = _graph()
    runtime = {"faceprint.engine", "faceprint.library.cluster"}
    detectors = {m for m in graph if m.startswith(("faceprint.liveness", "faceprint.forensics", "faceprint.quality"))}
    assert {"faceprint.liveness.pad", "faceprint.liveness.training", "faceprint.forensics.synthetic", "faceprint.forensics.training"} <= detectors
    for name in sorted(runtime | detectors):
        bad = {d for d in graph[name] if d.startswith("faceprint.evaluation")}
        assert not bad, f"{name} imports {sorted(bad)}"
    for name, deps in graph.items():
        if _package(name) != "faceprint.cli":
            bad = {d for d in deps if _package(d) == "faceprint.cli"}
            assert not bad, f"{name} imports {sorted(bad)}"


def test_no_import_circles_among_modules() -> None:
    circles = _circles(_graph())
    assert not circles, f"import circle(s): {[sorted(c) for c in circles]}"


#: the floors of the house, top first (docs/architecture.md draws the same picture): a package
#: imports only packages on lower floors.  A new package must be given its floor here.
LAYERS: list[set[str]] = [
    {"cli"},
    {"service"},
    {"evaluation", "gallery", "library", "faceprint"},  # "faceprint": the package's own __init__
    {"batch"},
    {"engine"},
    {"backends", "forensics"},
    {"embedding", "liveness"},
    {"postgres"},
    {"detection", "quality", "sqlite"},
    {"alignment", "crypto", "demo", "drawing", "imaging", "metrics", "models", "names", "settings"},
    {"errors", "media", "privacy", "scale", "types"},
]


def test_packages_import_only_lower_floors() -> None:
    floor = {name: i for i, names in enumerate(LAYERS) for name in names}
    short = lambda module: _package(module).removeprefix("faceprint.")  # noqa: E731
    graph = _graph()
    unplaced = {short(m) for m in graph} - set(floor)
    assert not unplaced, f"give these packages a floor in LAYERS (and docs/architecture.md): {sorted(unplaced)}"
    for name, deps in graph.items():
        for d in deps:
            if short(d) != short(name):
                assert floor[short(d)] > floor[short(name)], f"{name} imports {d}: {short(name)} is not above {short(d)} in LAYERS"


def test_no_import_circles_among_packages() -> None:
    """The layers: a package may use a lower one, never one that uses it (faceprint.service
    holds the REST app and the web UI, so the library does not reach up into it)."""
    packages: dict[str, set[str]] = {}
    for name, deps in _graph().items():
        packages.setdefault(_package(name), set()).update(_package(d) for d in deps if _package(d) != _package(name))
    circles = _circles(packages)
    assert not circles, f"package circle(s): {[sorted(c) for c in circles]}"


def test_the_walker_sees_a_lazy_circle(tmp_path: Path) -> None:
    """The check can fail: two modules importing each other inside functions are one circle."""
    assert _circles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == {frozenset({"a", "b"})}
