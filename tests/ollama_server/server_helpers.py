"""What the Ollama server tests share besides fixtures: a GPU provider plugin and waits."""

from __future__ import annotations

from hookspecs import hookimpl
from tests.helpers import wait_for

GPU_UUID = "GPU-5a1c0f3e-7d2b-4c1e-9f00-0123456789ab"


class OneGPU:
    """A GPU provider with one device, so that ``CUDA_VISIBLE_DEVICES`` has a GPU to choose."""

    name = "one-gpu"

    def __init__(self, settings):
        pass

    def probe(self):
        pass

    def sample(self):
        return {
            "devices": [{"index": 0, "name": "Test GPU", "uuid": GPU_UUID, "lost": False, "unsupported": []}],
            "processes": [],
            "versions": {},
        }

    def checks(self):
        return []


class OneGPUPlugin:
    @hookimpl
    def ai_gpu_providers(self):
        return [OneGPU]


def wait_state(api, predicate, timeout=30, what="the server reaching the state asked for"):
    def there():
        status, body = api("get", "/ollama/server")
        assert status == 200, body
        return body if body["state"] and predicate(body) else None

    return wait_for(there, timeout, interval=0.2, what=what)


def wait_task(api, task_id, timeout=60):
    def ended():
        status, task = api("get", f"/tasks/{task_id}")
        assert status == 200, task
        return task if task["status"] not in ("queued", "running") else None

    return wait_for(ended, timeout, interval=0.2, what=f"task {task_id} ending")
