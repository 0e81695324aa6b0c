"""The systemd way, without a running systemd (containers have none): the unit and drop-in
files checked by ``systemd-analyze verify``, and the commands the provider runs recorded
through its runner seam."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from hookspecs.ai import ProviderUnavailable
from open1panel_ai import errors
from open1panel_ai.ollama.server import settings as server_settings
from open1panel_ai.ollama.server.builtin import ai_ollama_server_providers
from open1panel_ai.ollama.server.systemd import Completed, SystemdServer

#: The unit the official install script writes (https://ollama.com/install.sh), with its program
#: path replaced by one that exists here, since verify checks it.
UNIT = """[Unit]
Description=Ollama Service
After=network-online.target

[Service]
ExecStart={program} serve
User=ollama
Group=ollama
Restart=always
RestartSec=3
Environment="PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

[Install]
WantedBy=default.target
"""


class Recorder:
    """A runner that records each argv and answers as systemd would on a machine that has
    the unit loaded and running."""

    def __init__(self, answers=None):
        self.calls: list[list[str]] = []
        self.answers = answers or {}

    def __call__(self, argv):
        argv = list(argv)
        self.calls.append(argv)
        for prefix, answer in self.answers.items():
            if tuple(argv[: len(prefix)]) == prefix:
                return answer
        if argv[:2] == ["systemctl", "show"] and "--property=LoadState" in argv:
            return Completed(0, "loaded\n", "")
        if argv[:2] == ["systemctl", "show"]:
            return Completed(
                0,
                "ActiveState=active\nMainPID=4242\nNRestarts=1\n"
                "StateChangeTimestamp=Fri 2026-12-04 10:00:00 UTC\nResult=success\n",
                "",
            )
        if argv[0] == "journalctl":
            return Completed(
                0,
                "2026-12-04T10:00:00+0000 host ollama[4242]: Listening on 127.0.0.1:11434\n"
                "2026-12-04T10:00:01+0000 host ollama[4242]: a \x1b[31mred\x1b[0m word\n",
                "",
            )
        return Completed(0, "", "")


def verify(unit_dir: Path) -> subprocess.CompletedProcess:
    """``systemd-analyze verify`` of the unit with its drop-ins, read from ``unit_dir``."""
    return subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit_dir / "ollama.service")],
        capture_output=True,
        text=True,
        env={"SYSTEMD_UNIT_PATH": f"{unit_dir}:", "PATH": "/usr/bin:/bin"},
    )


@pytest.fixture
def unit_dir(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is missing: install Debian's systemd package (scripts/test does)")
    folder = tmp_path / "system"
    folder.mkdir()
    (folder / "ollama.service").write_text(UNIT.format(program=shutil.which("true")))
    return folder


def test_the_drop_in_the_panel_writes_passes_systemd_analyze_verify(unit_dir):
    recorder = Recorder()
    provider = SystemdServer({"ollama_systemd_dir": str(unit_dir)}, runner=recorder)
    values, problems = server_settings.validated(
        {
            "OLLAMA_MODELS": "/srv/ollama models//models/",
            "OLLAMA_HOST": "0.0.0.0",
            "OLLAMA_ORIGINS": "https://app.example.com, chrome-extension://*",
            "OLLAMA_KEEP_ALIVE": "24h",
            "OLLAMA_NUM_PARALLEL": 4,
            "OLLAMA_MAX_LOADED_MODELS": "2",
            "OLLAMA_MAX_QUEUE": "128",
            "OLLAMA_FLASH_ATTENTION": True,
            "OLLAMA_KV_CACHE_TYPE": "q4_0",
            "OLLAMA_CONTEXT_LENGTH": "8192",
            "CUDA_VISIBLE_DEVICES": "GPU-5a1c0f3e-7d2b-4c1e-9f00-0123456789ab",
        },
        ["GPU-5a1c0f3e-7d2b-4c1e-9f00-0123456789ab"],
    )
    assert problems == {}
    provider.write(values)
    drop_in = unit_dir / "ollama.service.d" / "open1panel-ai.conf"
    text = drop_in.read_text()
    assert 'Environment="OLLAMA_MODELS=/srv/ollama models/models"' in text
    assert 'Environment="OLLAMA_HOST=0.0.0.0:11434"' in text
    assert [line for line in text.splitlines() if line and not line.startswith("#")][0] == "[Service]"
    assert all(line.startswith(("#", "[Service]", 'Environment="')) for line in text.splitlines())
    done = verify(unit_dir)
    assert done.returncode == 0 and done.stderr == "" and done.stdout == "", done.stderr
    # The check would see a stray key: a drop-in of the wrong shape fails it.
    (unit_dir / "ollama.service.d" / "zz-test.conf").write_text("[Service]\nEnvironmen=X=1\n")
    assert "Unknown key" in verify(unit_dir).stderr
    # What the panel reads back is what it wrote.
    assert provider.settings() == values
    assert drop_in.stat().st_mode & 0o777 == 0o644


def test_the_command_sequence_through_the_provider_seam(tmp_path):
    recorder = Recorder()
    provider = SystemdServer({"ollama_systemd_dir": str(tmp_path)}, runner=recorder)
    provider.probe()
    provider.write({"OLLAMA_NUM_PARALLEL": "2"})
    provider.restart()
    lines = provider.logs(100)
    state = provider.state()
    provider.stop()
    provider.start()
    provider.write({})
    assert recorder.calls == [
        ["systemctl", "show", "ollama.service", "--property=LoadState", "--value"],
        ["systemctl", "daemon-reload"],
        ["systemctl", "restart", "ollama.service"],
        ["journalctl", "-u", "ollama.service", "-n", "100", "--no-pager", "-o", "short-iso"],
        ["systemctl", "show", "ollama.service", "--property=ActiveState,MainPID,NRestarts,StateChangeTimestamp,Result"],
        ["systemctl", "stop", "ollama.service"],
        ["systemctl", "start", "ollama.service"],
        ["systemctl", "daemon-reload"],
    ]
    assert not (tmp_path / "ollama.service.d" / "open1panel-ai.conf").exists()  # no settings: no drop-in
    assert lines[0].endswith("Listening on 127.0.0.1:11434") and "\x1b" not in lines[1]
    assert state["status"] == "running" and state["pid"] == 4242 and state["restarts"] == 1


def test_systemd_is_not_chosen_where_it_does_not_run_the_unit(tmp_path):
    assert ai_ollama_server_providers()[0] is SystemdServer
    booted = "System has not been booted with systemd as init system (PID 1). Can't operate.\n"
    no_systemd = Recorder({("systemctl", "show"): Completed(1, "", booted)})
    with pytest.raises(ProviderUnavailable) as refused:
        SystemdServer({"ollama_systemd_dir": str(tmp_path)}, runner=no_systemd).probe()
    assert "System has not been booted with systemd" in refused.value.reason
    no_unit = Recorder({("systemctl", "show"): Completed(0, "not-found\n", "")})
    with pytest.raises(ProviderUnavailable) as refused:
        SystemdServer({"ollama_systemd_dir": str(tmp_path)}, runner=no_unit).probe()
    assert "ollama.service" in refused.value.reason and refused.value.fix
    failing = Recorder({("systemctl", "restart"): Completed(1, "", "Job for ollama.service failed.\n")})
    with pytest.raises(errors.UpstreamError) as failed:
        SystemdServer({"ollama_systemd_dir": str(tmp_path)}, runner=failing).restart()
    assert "Job for ollama.service failed." in failed.value.message


def test_a_drop_in_never_carries_anything_but_known_settings():
    hostile = {
        "OLLAMA_MODELS": "/data\n[Service]\nExecStartPre=/bin/sh -c id",
        "OLLAMA_ORIGINS": 'http://a"\nExecStart=/bin/sh',
        "OLLAMA_KEEP_ALIVE": "5m%n",
        "OLLAMA_HOST": "127.0.0.1:11434\\nUser=root",
        "EXEC=START": "x",
        "ExecStartPre": "/bin/sh",
    }
    clean, problems = server_settings.validated(hostile)
    assert clean == {} and set(problems) == {
        "OLLAMA_MODELS",
        "OLLAMA_ORIGINS",
        "OLLAMA_KEEP_ALIVE",
        "OLLAMA_HOST",
        "EXEC=START",
        "ExecStartPre",
    }
    # Even handed unchecked values, the writer parses each known one again and refuses it, and
    # leaves out any other name: the file holds its header and [Service], nothing else.
    for name, value in hostile.items():
        if name in server_settings.BY_NAME:
            with pytest.raises(server_settings.InvalidValue):
                server_settings.drop_in({name: value})
        else:
            assert server_settings.drop_in({name: value}) == server_settings.DROP_IN_HEADER + "[Service]\n"
    # And what is read back from a drop-in edited by hand is only known settings' valid values.
    edited = (
        '[Service]\nEnvironment="OLLAMA_NUM_PARALLEL=2"\nExecStartPre=/bin/sh\n'
        'Environment="LD_PRELOAD=/x.so"\nEnvironment="OLLAMA_KEEP_ALIVE=soon"\n'
    )
    assert server_settings.read_drop_in(edited) == {"OLLAMA_NUM_PARALLEL": "2"}
