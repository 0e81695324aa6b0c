"""The bridge's config file: written whole, private, and safe to write from several threads."""

import json
import stat
import threading

from open1panel_ai.mcp.supervisor import Supervised, Timing


def test_concurrent_writes_of_the_config_leave_one_whole_private_file(tmp_path):
    server = {
        "id": "abc123",
        "name": "time",
        "command": ["true"],
        "env_values": {"K": "secret"},
        "bind_host": "127.0.0.1",
        "port": 18100,
        "token": "t0ken",
        "transports": ["sse"],
        "extra_hosts": [],
    }
    config_path = tmp_path / "abc123.json"
    supervised = Supervised(server, ["true"], config_path, tmp_path / "abc123.log", Timing(), lambda server_id: None)
    failures = []

    def write(n):
        try:
            for i in range(50):
                supervised.reload_hosts([f"h{n}-{i}.example.test"])
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert [path.name for path in tmp_path.iterdir() if path.name != "abc123.log"] == ["abc123.json"]
    config = json.loads(config_path.read_text())
    assert config["token"] == "t0ken" and config["env"] == {"K": "secret"}
    assert len(config["allowed_hosts"]) == 1 and config["allowed_hosts"][0].endswith("-49.example.test")
    assert stat.S_IMODE(config_path.stat().st_mode) == 0o600
