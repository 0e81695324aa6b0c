"""Text for a terminal that cannot act on it: what the command line prints from elsewhere.

Model names, Ollama's messages, MCP server names and GPU names come from programs and servers
the panel does not control. Printed raw, a control sequence among them would act on the
terminal of whoever reads it: set the window title, erase the line to disguise what was
printed, or write to the clipboard (OSC 52). Everything the command line prints that came from
elsewhere goes through :func:`inert` first.
"""

from __future__ import annotations

import logging
import re
from typing import Any

#: Characters a terminal (or a bidirectional text renderer) may act on instead of showing: the
#: C0 controls, DEL, the C1 controls (U+0080..U+009F; U+009B alone starts a CSI sequence), the
#: line and paragraph separators, and the bidirectional embeddings, overrides and isolates that
#: can make a name read as another.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
#: The same, less the line breaks and tabs that multi-line text keeps.
_CONTROL_BUT_LINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def inert(value: Any, *, lines: bool = False) -> str:
    """``value`` as text in which every control character is shown as its escape (ESC becomes
    the four characters ``\\x1b``), so that printing it does nothing but show it.

    With ``lines=True`` line breaks and tabs are kept (a message of several lines, a traceback);
    otherwise they are shown as escapes too, so that one value stays on its line (a table cell).
    """
    text = value if isinstance(value, str) else str(value)
    return (_CONTROL_BUT_LINES if lines else _CONTROL).sub(_visible, text)


class InertFormatter(logging.Formatter):
    """A log formatter whose lines are :func:`inert`: log messages quote names and errors that
    came from elsewhere (an MCP server's name, an Ollama error). A message stays on its one
    line, so that nothing it quotes can pass for a log line of its own; a traceback after it
    keeps its lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return inert(super().formatMessage(record))

    def format(self, record: logging.LogRecord) -> str:
        return inert(super().format(record), lines=True)
