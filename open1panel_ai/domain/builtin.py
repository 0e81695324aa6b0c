"""The built-in reverse-proxy providers, registered last so an installed plugin comes first."""

from __future__ import annotations

from hookspecs import hookimpl
from hookspecs.ai import DomainProvider
from open1panel_ai.domain.caddy import CaddyProvider
from open1panel_ai.domain.nginx import NginxProvider


@hookimpl(trylast=True)
def ai_domain_providers() -> list[type[DomainProvider]]:
    return [NginxProvider, CaddyProvider]
