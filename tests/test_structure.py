"""The package's shape: no private name crosses a module boundary, no module is too long.

A private name another module needs belongs in a shared private module under a public name
(``skcharclf._utils.draw_seed``, ``skcharclf._images.estimate_backgrounds``); private modules
themselves (``from . import _plotting``) may be imported anywhere in the package.
"""

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "skcharclf"
MODULES = sorted(PACKAGE.rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _resolve(path: Path, node: ast.ImportFrom) -> str:
    """The absolute module a ``from ... import`` statement of ``path`` reads from."""
    if node.level == 0:
        return node.module or ""
    base = _module_name(path).split(".")
    if not _is_package(path):
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _is_module(dotted: str) -> bool:
    """Whether ``dotted`` (``skcharclf.x.y``) names a module or a subpackage of the package."""
    relative = Path(*dotted.split(".")[1:])
    return (PACKAGE / relative).with_suffix(".py").is_file() or (PACKAGE / relative).is_dir()


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _imported_modules(path: Path, tree: ast.Module) -> dict[str, str]:
    """Local names bound to modules of the package, anywhere in ``path``."""
    bound = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = _resolve(path, node)
            for alias in node.names:
                if source.split(".")[0] == "skcharclf" and _is_module(f"{source}.{alias.name}"):
                    bound[alias.asname or alias.name] = f"{source}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "skcharclf" and alias.asname:
                    bound[alias.asname] = alias.name
    return bound


def _private_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    own = _module_name(path)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom):
            continue
        source = _resolve(path, node)
        if source.split(".")[0] != "skcharclf" or source == own:
            continue
        for alias in node.names:
            if _private(alias.name) and not _is_module(f"{source}.{alias.name}"):
                found.append(f"line {node.lineno}: from {source} import {alias.name}")
    modules = _imported_modules(path, tree)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
            and _private(node.attr)
            and not _is_module(f"{modules[node.value.id]}.{node.attr}")
        ):
            found.append(f"line {node.lineno}: {modules[node.value.id]}.{node.attr}")
    return found


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_private_name_is_imported_across_modules(path):
    assert _private_imports(path) == []


# A module longer than this holds more than one idea: split what it does not orchestrate into
# the module that holds that machinery.
MAX_MODULE_LINES = 900


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_longer_than_the_limit(path):
    n_lines = len(path.read_text(encoding="utf-8").splitlines())
    assert n_lines <= MAX_MODULE_LINES, f"{path.name} has {n_lines} lines"


def test_the_checks_see_private_imports(tmp_path, monkeypatch):
    """The scan finds each form it is meant to find (and not the allowed ones)."""
    package = tmp_path / "skcharclf"
    (package / "sub").mkdir(parents=True)
    for name in ("__init__.py", "a.py", "_b.py", "sub/__init__.py", "sub/_c.py"):
        (package / name).write_text("")
    (package / "a.py").write_text(
        "from ._b import _x, y\n"
        "from skcharclf._b import _z\n"
        "from . import _b\n"
        "from skcharclf import sub\n"
        "sub._c\n"
        "_b._hidden\n"
    )
    (package / "sub" / "__init__.py").write_text("from ._c import public\nfrom ._c import _own\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", package)
    assert _private_imports(package / "a.py") == [
        "line 1: from skcharclf._b import _x",
        "line 2: from skcharclf._b import _z",
        "line 6: skcharclf._b._hidden",
    ]
    assert _private_imports(package / "sub" / "__init__.py") == [
        "line 2: from skcharclf.sub._c import _own"
    ]
