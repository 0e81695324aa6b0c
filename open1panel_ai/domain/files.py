"""The files a binding's config makes the proxy load, checked before the proxy is asked to.

nginx tests, and Caddy provisions, the whole configuration on every change: one certificate
that a renewal moved away fails the change of every other binding. So the domain service
checks the files first, and leaves out of the proxy a binding whose files are gone (see
docs/domains.md). What is in a file (a broken certificate, a key that does not match) is for
the proxy to judge, with its own TLS library.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable


def missing(paths: Iterable[str | None]) -> list[str]:
    """The paths among ``paths`` that name no regular file (links are followed, as the proxy
    follows them). A path the panel may not look at counts as present: the proxy, which may
    run as another user, says what it finds there."""
    gone = []
    for path in paths:
        if not path:
            continue
        try:
            if not stat.S_ISREG(os.stat(path).st_mode):
                gone.append(path)
        except PermissionError:
            continue
        except OSError:  # not there, a dangling or looping link, a file in place of a folder
            gone.append(path)
    return gone
