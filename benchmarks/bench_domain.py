"""Domain binding: what the proxies add, and what an apply costs.

- Requests through a binding (bearer auth on) against the Ollama stand-in reached directly:
  per-request latency, and the time to the first line of a streamed pull.
- An apply (write, keep, move, ``nginx -t``, reload and wait for the new workers) with 200
  other sites present, against ``nginx -t`` alone on the same tree; and a Caddy apply
  (read ``/config/apps``, write it back with ``If-Match``) with 200 other routes, against a
  plain read of ``/config/apps``.

Each ratio is against a baseline measured in the same run, on the same machine.
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import httpx

from open1panel_ai.domain.binding import ProxyBinding, Upstream
from open1panel_ai.domain.caddy import CaddyProvider
from open1panel_ai.domain.nginx import NginxProvider
from tests.domain.conftest import CaddyServer, NginxServer
from tests.ollama_standin import OllamaStandIn

DOMAIN = "ollama.example.test"
TOKEN = "benchmark-token-0123456789abcdefghijklmnop"
REQUESTS = 300
APPLIES = 10
OTHER_SITES = 200


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def _latency(client: httpx.Client, url: str, headers: dict) -> float:
    samples = []
    for _ in range(REQUESTS):
        started = time.perf_counter()
        response = client.get(url, headers={**headers, "Connection": "close"})
        samples.append(time.perf_counter() - started)
        assert response.status_code == 200, response.status_code
    return _median_ms(samples)


def _first_line(url: str, headers: dict, models: list[str]) -> float:
    """Pull each of ``models`` (not yet local) and time its first progress line."""
    samples = []
    for model in models:
        started = time.perf_counter()
        with httpx.stream("POST", url + "/api/pull", headers=headers, json={"model": model}, timeout=60) as response:
            lines = response.iter_lines()
            next(lines)
            samples.append(time.perf_counter() - started)
            for _ in lines:
                pass
    return _median_ms(samples)


def _timed(action, times: int = APPLIES) -> float:
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return _median_ms(samples)


def _row(what: str, baseline: tuple[str, float], measured: tuple[str, float]) -> None:
    print(
        f"{what}: {baseline[0]} {baseline[1]:.2f} ms | {measured[0]} {measured[1]:.2f} ms | "
        f"ratio {measured[1] / baseline[1]:.2f}"
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        ollama = OllamaStandIn(root / "ollama").start()
        models = [f"bench{n}" for n in range(9)]
        for model in models:
            ollama.publish(model, [600_000])
        ollama.pull_speed = 1_000_000
        nginx = NginxServer(root / "nginx").start()
        caddy = CaddyServer(root / "caddy").start()
        try:
            binding = ProxyBinding(
                id="bench",
                domains=(DOMAIN,),
                target_kind="ollama",
                upstream=Upstream("http", "127.0.0.1", ollama.port),
                auth_mode="bearer",
                token=TOKEN,
            )
            via_nginx = NginxProvider(nginx.settings(root / "data"))
            via_caddy = CaddyProvider(caddy.settings(root / "data"))
            via_nginx.apply(binding)
            via_caddy.apply(binding)
            headers = {"Host": DOMAIN, "Authorization": f"Bearer {TOKEN}"}
            nginx_url = f"http://127.0.0.1:{nginx.http_port}"
            caddy_url = f"http://127.0.0.1:{caddy.http_port}"

            with httpx.Client() as client:
                direct = _latency(client, ollama.url + "/api/version", {})
                through_nginx = _latency(client, nginx_url + "/api/version", headers)
                through_caddy = _latency(client, caddy_url + "/api/version", headers)
            print(f"GET /api/version, median of {REQUESTS}, a new connection each")
            _row("  nginx", ("direct", direct), ("through the binding", through_nginx))
            _row("  caddy", ("direct", direct), ("through the binding", through_caddy))

            first_direct = _first_line(ollama.url, {}, models[0:3])
            print("first line of a streamed pull (0.6 s of progress), median of 3")
            _row(
                "  nginx",
                ("direct", first_direct),
                ("through the binding", _first_line(nginx_url, headers, models[3:6])),
            )
            _row(
                "  caddy",
                ("direct", first_direct),
                ("through the binding", _first_line(caddy_url, headers, models[6:9])),
            )

            for n in range(OTHER_SITES):
                other = replace(binding, id=f"other{n}", domains=(f"site{n}.example.test",))
                via_nginx.site_path(other.id).write_text(via_nginx.preview(other))
                via_caddy.apply(other)
            test_only = _timed(
                lambda: subprocess.run(
                    [via_nginx.binary, "-c", str(via_nginx.main_conf), "-t"], capture_output=True, check=True
                )
            )
            apply = _timed(lambda: via_nginx.apply(binding))
            print(f"one apply with {OTHER_SITES} other bindings, median of {APPLIES}")
            _row("  nginx", ("nginx -t alone", test_only), ("apply with reload", apply))
            read = _timed(lambda: httpx.get(caddy.admin + "/config/apps").raise_for_status())
            _row("  caddy", ("GET /config/apps", read), ("apply", _timed(lambda: via_caddy.apply(binding))))
        finally:
            nginx.stop()
            caddy.stop()
            ollama.stop()


if __name__ == "__main__":
    main()
