"""Which project modules a module uses, read from its import statements.

A stage's code version digests every t2v_core module that the stage's own module imports,
directly or through others, at the top or inside a function. The list is derived, never
written by hand, so a helper that a stage reaches three imports deep (validation during
training reads the judge, which reads the corpus's palette) still reruns the stage when it
changes. Imports under ``if TYPE_CHECKING:`` do not run and do not count.

The same graph backs the layering test: no module imports one that builds on it, so the
graph has no cycle.
"""

from __future__ import annotations

import ast
import hashlib
from functools import cache
from pathlib import Path

PACKAGE = "t2v_core"
CORE_DIR = Path(__file__).resolve().parent


def module_file(name: str, root: Path = CORE_DIR) -> Path | None:
    """The source file of a t2v_core module or package (its ``__init__.py``), else None."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = root.joinpath(*parts[1:])
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def direct_imports(name: str, root: Path = CORE_DIR) -> frozenset[str]:
    """The t2v_core modules that module ``name`` imports by name (``from a import b`` counts
    as module ``a.b`` when that is a module, else as ``a``)."""
    path = module_file(name, root)
    if path is None:
        raise ValueError(f"no t2v_core module {name!r} under {root}")
    return _direct_imports(name, path.read_text(), str(root))


@cache
def _direct_imports(name: str, source: str, root_text: str) -> frozenset[str]:
    root = Path(root_text)
    is_package = module_file(name, root).name == "__init__.py"  # type: ignore[union-attr]
    package = name if is_package else name.rpartition(".")[0]
    out: set[str] = set()
    for node in _import_nodes(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            if node.level:
                base_parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            targets = [f"{base}.{a.name}" if module_file(f"{base}.{a.name}", root) else base
                       for a in node.names]
        out.update(t for t in targets if module_file(t, root) is not None)
    out.discard(name)
    return frozenset(out)


def uses(names: list[str] | tuple[str, ...], root: Path = CORE_DIR) -> list[str]:
    """Every t2v_core module that ``names`` import, transitively, themselves included; sorted.

    The ``__init__`` of each package on the way counts as a file, but what it imports is
    followed only where a module imports the package itself (``from t2v_core.model import
    Generator``): importing ``t2v_core.model.text_encoder`` runs the package's re-exports,
    but nothing of them reaches the importer."""
    followed: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in followed:
            continue
        followed.add(name)
        todo.extend(direct_imports(name, root))
    parents = {".".join(n.split(".")[:i]) for n in followed for i in range(1, n.count(".") + 1)}
    return sorted(followed | parents)


def code_digest(names: list[str] | tuple[str, ...], root: Path = CORE_DIR) -> str:
    """A digest of the source of every module that ``names`` use (``uses``)."""
    h = hashlib.sha256()
    for name in uses(names, root):
        path = module_file(name, root)
        assert path is not None, name
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def all_modules(root: Path = CORE_DIR) -> list[str]:
    """Every module and package of t2v_core under ``root``."""
    names = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).with_suffix("")
        parts = [PACKAGE, *rel.parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return names


def import_graph(root: Path = CORE_DIR) -> dict[str, frozenset[str]]:
    """Module -> the modules it imports (package ``__init__`` re-exports included)."""
    return {name: direct_imports(name, root) for name in all_modules(root)}
