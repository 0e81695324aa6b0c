"""What a proxy provider receives: one binding, validated, with its target resolved.

The service builds a :class:`ProxyBinding` from a stored binding and the target's address;
providers turn it into proxy configuration and never see unvalidated text. The types are the
contract's (:mod:`hookspecs.domain`).
"""

from __future__ import annotations

from hookspecs.domain import AUTH_MODES, BODY_LIMIT_MB, TARGET_KINDS, TLS_MODES, ProxyBinding, Upstream

__all__ = ["AUTH_MODES", "BODY_LIMIT_MB", "TARGET_KINDS", "TLS_MODES", "ProxyBinding", "Upstream"]
