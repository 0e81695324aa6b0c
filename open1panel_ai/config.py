"""The panel's settings, read from ``OPEN1PANEL_AI_*`` environment variables.

Every setting is an environment variable ``OPEN1PANEL_AI_<NAME>``; the command line only sets
those variables. Providers see the same values as a plain mapping (see :mod:`hookspecs.ai`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ENV_PREFIX = "OPEN1PANEL_AI_"

#: Variables that hold secrets: read where they are needed, never handed to providers.
SECRET_VARIABLES = frozenset({ENV_PREFIX + "TOKEN", ENV_PREFIX + "METRICS_TOKEN"})

#: Values used when a variable is not set (names in lower case, without the prefix).
DEFAULTS: Mapping[str, str] = {
    "host": "127.0.0.1",
    "port": "8788",
    "ollama_provider": "auto",
    "mcp_provider": "auto",
    "gpu_provider": "auto",
    "domain_provider": "auto",
    "task_workers": "4",
    "threads": "512",
    "workers": "1",
    "sign_in_seconds": "10",
    "redis_url": "",
    "disabled_plugins": "",
    "nginx_bin": "nginx",
    "nginx_conf": "/etc/nginx/nginx.conf",
    "nginx_sites_dir": "/etc/nginx/conf.d",
    "nginx_http_port": "80",
    "nginx_https_port": "443",
    "caddy_admin": "http://127.0.0.1:2019",
}


def default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "open1panel-ai"


@dataclass(frozen=True)
class Settings:
    """A snapshot of the settings: defaults overlaid by the environment."""

    values: Mapping[str, str]

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        values = dict(DEFAULTS)
        for key, value in environ.items():
            if key.startswith(ENV_PREFIX) and key not in SECRET_VARIABLES:
                values[key[len(ENV_PREFIX) :].lower()] = value
        values.setdefault("data_dir", str(default_data_dir()))
        values["data_dir"] = str(Path(values["data_dir"]).expanduser())
        return cls(values)

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.values.get(name, default)

    def get_int(self, name: str) -> int:
        raw = self.values[name]
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"{ENV_PREFIX}{name.upper()} must be a whole number, not {raw!r}") from None

    @property
    def data_dir(self) -> Path:
        return Path(self.values["data_dir"])

    @property
    def disabled_plugins(self) -> frozenset[str]:
        return frozenset(p.strip() for p in self.values["disabled_plugins"].split(",") if p.strip())

    def provider_choice(self, kind: str) -> str:
        """The provider name chosen for ``kind``, or ``"auto"``."""
        return self.values.get(f"{kind}_provider", "auto").strip() or "auto"
