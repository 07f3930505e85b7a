"""The layout of `app/`, read from the code itself (ARCHITECTURE.md §2, §5).

Protocol packages, pages and the Hub's dialect are siblings that call the repo model, never
each other; the repo model depends on no protocol package; only the store layer spells out
storage keys; only the ref service moves refs.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[1] / "app"

# The protocol packages, the Hub's dialect, the pages and the HTTP faces of the viewer and of
# inference are siblings: each calls the repo model and the domain services, never another
# sibling (the pages may call the viewer's service, not its routes).
SIBLINGS = ("hub", "web", "lfs", "xet", "git", "datasets", "inference")
# (package, module prefix it may import although the prefix's package is forbidden, and why)
ALLOWED = {
    ("web", "datasets.views"),  # the viewer's page renders the viewer API's own answers
    ("web", "datasets.service"),
    ("repos", "xet.reconstruction"),  # the Xet storage format, read like git's object format
    ("repos", "datasets.tags"),  # a dataset card's derived tags, refreshed with each commit
}
# (package, packages it must not import)
FORBIDDEN = [(p, tuple(q for q in SIBLINGS if q != p)) for p in SIBLINGS] + [
    ("repos", SIBLINGS),
]


STORE_LAYER = ("blobs",)  # the only package that writes out blob store keys
KEY_PREFIXES = ("git/", "lfs/", "xet/")
REF_SERVICE = "repos/refs.py"  # the only module that writes the refs table


def modules(package: str | None = None) -> Iterator[tuple[Path, ast.Module]]:
    root = APP / package if package else APP
    for path in sorted(root.rglob("*.py")):
        yield path, ast.parse(path.read_text(), str(path))


def imported(tree: ast.Module, path: Path) -> Iterator[str]:
    package = ".".join(path.relative_to(APP.parent).with_suffix("").parts[:-1])
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing package
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                yield f"{base}.{node.module}" if node.module else base
            elif node.module:  # each name: `from app.datasets import views` is app.datasets.views
                yield from (f"{node.module}.{alias.name}" for alias in node.names)


def docstrings(tree: ast.Module) -> set[int]:
    """ids of the string constants that are docstrings (they may name keys for the reader)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


@pytest.mark.parametrize(("package", "forbidden"), FORBIDDEN)
def test_package_does_not_import_its_siblings(package: str, forbidden: tuple[str, ...]) -> None:
    offenders = [
        f"{path.relative_to(APP.parent)} imports {name}"
        for path, tree in modules(package)
        for name in imported(tree, path)
        if any(name == f"app.{f}" or name.startswith(f"app.{f}.") for f in forbidden)
        and not any(name.startswith(f"app.{allowed}") for p, allowed in ALLOWED if p == package)
    ]
    assert not offenders, "\n".join(offenders)


def test_only_the_store_layer_spells_out_storage_keys() -> None:
    offenders = []
    for path, tree in modules():
        if path.relative_to(APP).parts[0] in STORE_LAYER:
            continue
        skip = docstrings(tree)
        for node in ast.walk(tree):
            text = None
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = None if id(node) in skip else node.value
            elif isinstance(node, ast.JoinedStr) and node.values:
                first = node.values[0]
                text = first.value if isinstance(first, ast.Constant) else None
            if isinstance(text, str) and text.startswith(KEY_PREFIXES):
                offenders.append(f"{path.relative_to(APP.parent)}:{node.lineno}: {text!r}")
    assert not offenders, "\n".join(offenders)


def test_only_the_ref_service_writes_refs() -> None:
    """`update(Ref)`, `delete(Ref)` and `Ref(...)` appear in app/repos/refs.py alone."""
    offenders = []
    for path, tree in modules():
        if path.relative_to(APP).as_posix() == REF_SERVICE:
            continue
        if "app.repos.models.Ref" not in set(imported(tree, path)):
            continue  # another `Ref` (dulwich's ref name type) or none
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else None
            writes_table = name in ("update", "delete", "insert") and any(
                isinstance(arg, ast.Name) and arg.id == "Ref" for arg in node.args
            )
            if name == "Ref" or writes_table:
                offenders.append(f"{path.relative_to(APP.parent)}:{node.lineno}")
    assert not offenders, "\n".join(offenders)


def test_the_rules_see_a_violation() -> None:
    """The checks above would catch what they guard against (a test that cannot fail is none)."""
    tree = ast.parse("from app.hub.downloads import x\nimport app.git.push\nRef(name='x')\n")
    names = list(imported(tree, APP / "web" / "fake.py"))
    assert "app.hub.downloads.x" in names and "app.git.push" in names
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    assert isinstance(calls[0].func, ast.Name) and calls[0].func.id == "Ref"
    keys = ast.parse('key = f"lfs/{oid}"')
    joined = [n for n in ast.walk(keys) if isinstance(n, ast.JoinedStr)]
    first = joined[0].values[0]
    assert isinstance(first, ast.Constant) and first.value.startswith(KEY_PREFIXES)
