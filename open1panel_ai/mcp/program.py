"""Whether a stdio server's program can be run, decided before anything is spawned.

The bridge starts the child with the panel's ``PATH`` unless the server's env sets its own, in
the server's working folder. The same lookup is made here, so a missing ``uvx`` or a mistyped
program name is reported at once, naming the program and how to install it, instead of
surfacing after a round of restarts; and the add/edit form can warn before it saves.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence

from open1panel_ai.i18n import Message

#: Programs whose package a person installs under another name, by the key that says how.
INSTALL_HINTS = {
    "uvx": "mcp.reason.missing_uv",
    "uv": "mcp.reason.missing_uv",
    "npx": "mcp.reason.missing_node",
    "npm": "mcp.reason.missing_node",
    "node": "mcp.reason.missing_node",
}


def child_path(env: Mapping[str, str] | None) -> str:
    """The ``PATH`` the child gets: the server's own, else the panel's."""
    return (env or {}).get("PATH") or os.environ.get("PATH") or os.defpath


def find_program(argv: Sequence[str], env: Mapping[str, str] | None = None, cwd: str | None = None) -> str | None:
    """The file ``argv[0]`` runs, or None when there is none that may be run. A name with a
    slash is a path (relative ones from the working folder); a bare name is looked up on
    :func:`child_path`."""
    program = argv[0]
    if "/" in program:
        candidate = os.path.normpath(os.path.join(cwd or os.getcwd(), program))
        return candidate if os.path.isfile(candidate) and os.access(candidate, os.X_OK) else None
    return shutil.which(program, path=child_path(env))


def cannot_run(argv: Sequence[str], env: Mapping[str, str] | None = None, cwd: str | None = None) -> Message | None:
    """Why ``argv`` cannot be started, as one sentence with what to do; None when it can."""
    if cwd and not os.path.isdir(cwd):
        return Message("mcp.reason.missing_cwd", cwd=cwd)
    if find_program(argv, env, cwd) is not None:
        return None
    program = argv[0]
    if "/" in program:
        return Message("mcp.reason.missing_file", program=program)
    hint = INSTALL_HINTS.get(program, "mcp.reason.missing_program")
    return Message(hint, program=program, path=child_path(env))
