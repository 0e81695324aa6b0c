"""Measure a model: a benchmark task over the fixed prompt set, its stored results compared
across models and servers, the GPU reading from the GPU provider, and the CSV export."""

import csv
import io
import sys

import pytest

from open1panel_ai.ollama.measure import OPTIONS, PROMPTS
from tests.gpu.fake_pynvml import FakeGPU, FakeNVML
from tests.ollama_standin import OllamaStandIn


@pytest.fixture
def one_gpu(monkeypatch):
    """An A100 with 10 GiB of its 80 GiB in use, read through the GPU provider (NVML)."""
    monkeypatch.setitem(sys.modules, "pynvml", FakeNVML([FakeGPU()]).module())


def test_a_benchmark_records_medians_load_time_and_the_gpu_and_compares_models(
    one_gpu, ollama, ollama_api, wait_task, tmp_path
):
    ollama.seed("llama3.2", [3000])
    ollama.seed("qwen2:0.5b", [1000])
    assert ollama_api("post", "/ollama/models/llama3.2/load", json={})[0] == 204
    status, task = ollama_api("post", "/ollama/benchmarks", json={"model": "llama3.2", "runs": 2})
    assert status == 202 and task["kind"] == "ollama.benchmark"
    done = wait_task(task["id"])
    assert done["status"] == "succeeded", done
    assert done["completed"] == done["total"] == 2 * len(PROMPTS)
    asked = [entry["body"] for entry in ollama.chat_log]
    assert [b["messages"][0]["content"] for b in asked] == list(PROMPTS) * 2
    assert all(b["options"] == OPTIONS for b in asked)

    status, listing = ollama_api("get", "/ollama/benchmarks")
    assert status == 200 and listing["prompts"] == list(PROMPTS)
    [result] = listing["results"]
    assert result["model"] == "llama3.2:latest" and result["endpoint"] == "local" and result["runs"] == 2
    assert result["tokens_per_second"] == 40.0 and result["prompt_tokens_per_second"] == 400.0
    assert result["load_ms"] == 1500.0  # unloaded first: a cold load, though it was loaded
    assert 3 < result["ttft_ms"] < 1500  # the median answer found the model loaded
    assert result["gpu"] == "NVIDIA A100-SXM4-80GB" and result["vram_used"] == 10 * 2**30
    assert result["vram_total"] == 80 * 2**30 and result["model_vram"] > 0

    # A second model, and the same model on a second server, join one table.
    with OllamaStandIn(tmp_path / "other") as other:
        other.seed("qwen2:0.5b", [1000])
        other.eval_rate = 80.0
        ollama_api("post", "/ollama/endpoints", json={"name": "gpu-box", "url": other.url})
        for body in ({"model": "qwen2:0.5b", "runs": 1}, {"model": "qwen2:0.5b", "runs": 1, "endpoint": "gpu-box"}):
            status, task = ollama_api("post", "/ollama/benchmarks", json=body)
            assert status == 202 and wait_task(task["id"])["status"] == "succeeded"
    results = ollama_api("get", "/ollama/benchmarks")[1]["results"]
    assert sorted((r["model"], r["endpoint"], r["tokens_per_second"]) for r in results) == [
        ("llama3.2:latest", "local", 40.0),
        ("qwen2:0.5b", "gpu-box", 80.0),
        ("qwen2:0.5b", "local", 40.0),
    ]
    assert len(ollama_api("get", "/ollama/benchmarks?model=qwen2:0.5b")[1]["results"]) == 2
    assert len(ollama_api("get", "/ollama/benchmarks?endpoint=gpu-box")[1]["results"]) == 1


def test_results_export_as_csv_and_can_be_deleted(ollama, ollama_env, client, auth_headers, ollama_api, wait_task):
    ollama.seed("llama3.2", [3000])
    status, task = ollama_api("post", "/ollama/benchmarks", json={"model": "llama3.2", "runs": 1})
    assert wait_task(task["id"])["status"] == "succeeded"
    response = client.get("/api/v2/ai/ollama/benchmarks.csv", headers=auth_headers)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    [row] = rows
    assert row["model"] == "llama3.2:latest" and float(row["tokens_per_second"]) == 40.0
    assert row["gpu"] == ""  # CPU mode here: no GPU to name
    result_id = row["id"]
    assert ollama_api("delete", f"/ollama/benchmarks/{result_id}")[0] == 204
    assert ollama_api("delete", f"/ollama/benchmarks/{result_id}")[0] == 404
    assert ollama_api("get", "/ollama/benchmarks")[1]["results"] == []


def test_a_benchmark_is_refused_for_bad_input_and_past_the_budget(ollama, ollama_api):
    ollama.seed("llama3.2", [3000])
    ollama.seed("qwen2:0.5b", [1000])
    for body in (
        {"model": "llama3.2", "runs": 0},
        {"model": "llama3.2", "runs": 21},
        {"runs": 1},
        {"model": "bad name"},
    ):
        assert ollama_api("post", "/ollama/benchmarks", json=body)[0] == 400, body
    assert ollama_api("post", "/ollama/benchmarks", json={"model": "missing"})[0] == 404
    ollama_api("post", "/ollama/models/qwen2:0.5b/load", json={})
    ollama_api("put", "/ollama/endpoints/local/budget", json={"max_models": 1})
    status, error = ollama_api("post", "/ollama/benchmarks", json={"model": "llama3.2"})
    assert status == 409 and error["error"]["details"]["unload"] == ["qwen2:0.5b"]
    assert ollama.chat_log == []
