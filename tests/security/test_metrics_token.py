"""Finding 9 of the security review: ``/metrics`` takes a scrape token of its own.

Before the fix a Prometheus server had to hold the admin token, so whoever could read the
scrape configuration could do anything the admin can. The scrape token opens
``GET /api/v2/ai/metrics`` and nothing else: no other route, no page, no Socket.IO.
"""

import os
import stat

import pytest

from open1panel_ai.config import Settings
from open1panel_ai.standalone import auth
from open1panel_ai.standalone.server import check_settings
from tests.conftest import TOKEN

METRICS = "/api/v2/ai/metrics"
SAMPLE_ARGUMENTS = {"task_id": "abc", "name": "ai", "filename": "ai.js", "path": "x"}


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_a_scrape_token_is_made_owner_only_and_kept(make_host, data_dir):
    first = make_host()
    path = data_dir / "metrics-token"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.read_text().strip() == first.metrics_token
    assert len(first.metrics_token) >= 32 and first.metrics_token != TOKEN
    first.shutdown()
    assert make_host().metrics_token == first.metrics_token


def test_the_scrape_token_opens_the_metrics_and_nothing_else(host):
    client = host.app.test_client()
    scrape = bearer(host.metrics_token)
    response = client.get(METRICS, headers=scrape)
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    assert "open1panel_ai_gpu_cpu_mode" in response.get_data(as_text=True)
    assert client.head(METRICS, headers=scrape).status_code == 200
    checked = 0
    for rule in host.app.url_map.iter_rules():
        url = rule.build({arg: SAMPLE_ARGUMENTS.get(arg, "x") for arg in rule.arguments})[1]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            if rule.endpoint == "healthz" or (url == METRICS and method == "GET"):
                continue
            answer = client.open(url, method=method, headers=scrape)
            assert answer.status_code == 401, f"{method} {url} answered {answer.status_code}"
            checked += 1
    assert checked >= 40  # the host's, every feature's and the static routes
    for method in ("POST", "PUT", "DELETE"):  # the metrics route itself only for reading
        assert client.open(METRICS, method=method, headers=scrape).status_code == 401
    assert client.get(METRICS + "/", headers=scrape).status_code == 401
    assert client.get("/ai/gpu/", headers=scrape).status_code == 401


def test_the_scrape_token_opens_no_socketio_connection(host):
    for kwargs in ({"auth": {"token": host.metrics_token}}, {"headers": bearer(host.metrics_token)}):
        socket = host.socketio.test_client(host.app, namespace="/ai", **kwargs)
        assert not socket.is_connected("/ai")


def test_the_admin_token_still_reads_the_metrics_and_a_wrong_token_does_not(client):
    assert client.get(METRICS, headers=bearer(TOKEN)).status_code == 200
    assert client.get(METRICS, headers=bearer("x" * 40)).status_code == 401
    assert client.get(METRICS).status_code == 401


def test_the_scrape_token_may_be_a_setting(make_host, panel_env, data_dir):
    chosen = "prometheus-scrape-token-0123456789abcdef"
    panel_env.setenv("OPEN1PANEL_AI_METRICS_TOKEN", chosen)
    host = make_host()
    assert host.metrics_token == chosen and not (data_dir / "metrics-token").exists()
    assert host.app.test_client().get(METRICS, headers=bearer(chosen)).status_code == 200


@pytest.mark.parametrize(
    "value, error",
    [
        ("too-short", "OPEN1PANEL_AI_METRICS_TOKEN holds a token of 9 characters"),
        (TOKEN, "OPEN1PANEL_AI_METRICS_TOKEN holds the admin token"),
    ],
)
def test_a_short_scrape_token_or_the_admin_token_is_refused(panel_env, value, error):
    panel_env.setenv("OPEN1PANEL_AI_METRICS_TOKEN", value)
    with pytest.raises(ValueError, match=error):
        check_settings(Settings.from_environ())


def test_a_scrape_token_file_holding_the_admin_token_is_refused(panel_env, data_dir):
    data_dir.mkdir(parents=True)
    (data_dir / "metrics-token").write_text(TOKEN + "\n")
    with pytest.raises(ValueError, match="metrics-token holds the admin token"):
        auth.check_metrics_token(data_dir)
