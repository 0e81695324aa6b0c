"""The hook contract: documented in code and in docs/hooks.md, tested, and free of I/O."""

import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

import hookspecs.ai
import hookspecs.panel
from hookspecs import PROJECT_NAME

ROOT = Path(__file__).parent.parent
HOOK_MODULES = {"panel_": hookspecs.panel, "ai_": hookspecs.ai}


def all_hooks():
    for prefix, module in HOOK_MODULES.items():
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if hasattr(function, f"{PROJECT_NAME}_spec"):
                yield prefix, name, function


HOOKS = sorted(all_hooks(), key=lambda hook: hook[1])


def test_there_are_hooks_in_both_modules():
    assert {prefix for prefix, _, _ in HOOKS} == set(HOOK_MODULES)


@pytest.mark.parametrize("prefix, name, function", HOOKS, ids=[h[1] for h in HOOKS])
def test_hook_names_carry_their_module_prefix(prefix, name, function):
    assert name.startswith(prefix)


@pytest.mark.parametrize("prefix, name, function", HOOKS, ids=[h[1] for h in HOOKS])
def test_every_hook_has_a_full_docstring(prefix, name, function):
    doc = inspect.getdoc(function) or ""
    assert ":return:" in doc, f"{name} does not say what to return"
    for parameter in inspect.signature(function).parameters:
        assert f":param {parameter}:" in doc, f"{name} does not document {parameter}"
    assert "None" in doc, f"{name} does not say what None means"


@pytest.mark.parametrize("prefix, name, function", HOOKS, ids=[h[1] for h in HOOKS])
def test_every_hook_is_in_the_docs(prefix, name, function):
    assert re.search(rf"`{name}\(", (ROOT / "docs" / "hooks.md").read_text()), f"{name} is missing from docs/hooks.md"


@pytest.mark.parametrize("prefix, name, function", HOOKS, ids=[h[1] for h in HOOKS])
def test_every_hook_has_a_test(prefix, name, function):
    this_file = Path(__file__).name
    tested = [p.name for p in (ROOT / "tests").rglob("test_*.py") if p.name != this_file and name in p.read_text()]
    assert tested, f"no test mentions {name}"


def test_importing_the_contract_starts_no_web_stack_and_does_no_io():
    code = (
        "import sys, hookspecs.panel, hookspecs.ai; "
        "print(sorted(m for m in ('flask', 'flask_socketio', 'sqlite3', 'httpx', 'socket', "
        "'open1panel_ai') if m in sys.modules))"
    )
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert imported.stdout.strip() == "[]"


def test_every_provider_protocol_has_a_name_and_a_probe():
    assert "name" in hookspecs.ai.Provider.__annotations__
    for protocol in (
        hookspecs.ai.OllamaProvider,
        hookspecs.ai.MCPProvider,
        hookspecs.ai.GPUProvider,
        hookspecs.ai.DomainProvider,
    ):
        assert hookspecs.ai.Provider in protocol.__mro__ and callable(protocol.probe)
        methods = [m for m in vars(protocol) if not m.startswith("_")]
        assert methods and all(inspect.getdoc(getattr(protocol, m)) for m in methods)
