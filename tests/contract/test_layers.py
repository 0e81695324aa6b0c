"""The import rules of the layers, read from the source with ``ast``:

- ``hookspecs`` (the contract) imports nothing of ``open1panel_ai``;
- the standalone host imports only ``hookspecs`` and the plugin's public entry points, as a
  third-party host would;
- no feature package imports another feature package: features meet through
  :mod:`open1panel_ai.interfaces`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from open1panel_ai import features

ROOT = Path(__file__).parent.parent.parent
PACKAGE = ROOT / "open1panel_ai"
FEATURES = set(features.load())
#: What a host may import of the plugin.
PUBLIC = {"open1panel_ai", "open1panel_ai.host", "open1panel_ai.plugin", "open1panel_ai.testing"}

#: Cross-feature imports that exist today in modules outside this suite's owners' reach, each
#: with the reason it is still there; the next sweep moves them behind an interface.
KNOWN: dict[tuple[str, str], str] = {}


def imported(path: Path, typing_only: bool = True) -> list[tuple[int, str]]:
    """``(line, module)`` of every import in ``path``, relative ones made absolute; a
    ``from package import name`` counts as importing ``package.name`` too (it may be a module).
    Without ``typing_only``, imports under ``if TYPE_CHECKING:`` (never run) are left out."""
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    skipped = set()
    if not typing_only:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                skipped |= {id(inner) for child in node.body for inner in ast.walk(child)}
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def sources(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.py"))


def test_the_contract_imports_nothing_of_the_plugin():
    bad = [
        f"{p.relative_to(ROOT)}:{line} {name}"
        for p in sources(ROOT / "hookspecs")
        for line, name in imported(p)
        if name.split(".")[0] == "open1panel_ai"
    ]
    assert not bad


def test_the_standalone_host_imports_only_the_contract_and_public_entry_points():
    bad = []
    for path in sources(PACKAGE / "standalone"):
        for line, name in imported(path):
            parts = name.split(".")
            if parts[0] != "open1panel_ai" or name in PUBLIC or name.startswith("open1panel_ai.standalone"):
                continue
            parent = ".".join(parts[:-1])
            if parent in PUBLIC and (parent != "open1panel_ai" or parts[-1] not in _submodules()):
                continue  # a name a public module exports (not a module of the package)
            bad.append(f"{path.relative_to(ROOT)}:{line} {name}")
    assert not bad, "the standalone host reaches into the plugin:\n" + "\n".join(bad)


def _submodules() -> set[str]:
    return {p.stem for p in PACKAGE.glob("*.py")} | {p.name for p in PACKAGE.iterdir() if p.is_dir()}


@pytest.mark.parametrize("feature", sorted(FEATURES))
def test_no_feature_imports_another(feature):
    crossing = set()
    for path in sources(PACKAGE / feature):
        for _, name in imported(path):
            parts = name.split(".")
            if parts[0] == "open1panel_ai" and len(parts) > 1 and parts[1] in FEATURES - {feature}:
                crossing.add((str(path.relative_to(ROOT)), parts[1]))
    unexpected = sorted(crossing - set(KNOWN))
    assert not unexpected, f"{feature} imports another feature: {unexpected}"
    gone = sorted(
        known for known in KNOWN if known[0].startswith(f"open1panel_ai/{feature}/") and known not in crossing
    )
    assert not gone, f"listed as known but no longer there (remove from KNOWN): {gone}"


def test_the_rules_see_an_import_that_breaks_them(tmp_path):
    """The checker itself: a relative import of a sibling feature is found."""
    module = tmp_path / "open1panel_ai" / "gpu" / "x.py"
    module.parent.mkdir(parents=True)
    module.write_text("from ..mcp import service\nfrom . import metrics\n")
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        assert (1, "open1panel_ai.mcp.service") in imported(module)
        assert (2, "open1panel_ai.gpu.metrics") in imported(module)
    finally:
        ROOT = saved


@pytest.mark.parametrize("feature", sorted(FEATURES))
def test_a_features_modules_import_each_other_without_cycles(feature):
    """Within a feature, imports that run (in functions too; not those for type checkers only)
    form no cycle: a module that needs a lazy import to break one has its parts in the wrong
    modules."""
    prefix = f"open1panel_ai.{feature}."
    graph: dict[str, set[str]] = {}
    for path in sources(PACKAGE / feature):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        graph[module] = {name for _, name in imported(path, typing_only=False) if name.startswith(prefix)}
    graph = {module: {name for name in names if name in graph and name != module} for module, names in graph.items()}
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        for following in sorted(graph[module]):
            if following in path:
                cycles.append(path[path.index(following) :] + [following])
            elif len(path) < 12:
                visit(following, path + [following])

    for module in sorted(graph):
        visit(module, [module])
    assert not cycles, f"import cycles in {feature}: {cycles[:3]}"
