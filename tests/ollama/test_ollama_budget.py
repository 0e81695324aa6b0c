"""A memory budget per server: loads past it are refused naming what would be unloaded, and
``evict`` unloads the least recently used first."""


def loaded(ollama):
    return sorted(m["name"] for m in ollama.ps()["models"])


def test_a_budget_is_set_read_and_removed(ollama, ollama_api):
    assert ollama_api("get", "/ollama/endpoints/local/budget") == (
        200,
        {"endpoint": "local", "vram_bytes": None, "max_models": None},
    )
    status, budget = ollama_api("put", "/ollama/endpoints/local/budget", json={"max_models": 2})
    assert status == 200 and budget == {"endpoint": "local", "vram_bytes": None, "max_models": 2}
    assert ollama_api("get", "/ollama/endpoints/local/budget")[1]["max_models"] == 2
    for bad in ({"max_models": 0}, {"vram_bytes": -5}, {"vram_bytes": "1G"}, {"other": 1}):
        assert ollama_api("put", "/ollama/endpoints/local/budget", json=bad)[0] == 400, bad
    assert ollama_api("put", "/ollama/endpoints/nope/budget", json={"max_models": 1})[0] == 404
    assert (
        ollama_api("put", "/ollama/endpoints/local/budget", json={"max_models": None, "vram_bytes": None})[1][
            "max_models"
        ]
        is None
    )


def test_a_load_past_the_model_count_names_what_to_unload_and_evict_unloads_it(ollama, ollama_api):
    for name in ("a", "b", "c"):
        ollama.seed(name, [1_000_000])
    ollama_api("put", "/ollama/endpoints/local/budget", json={"max_models": 2})
    assert ollama_api("post", "/ollama/models/a/load", json={})[0] == 204
    assert ollama_api("post", "/ollama/models/b/load", json={})[0] == 204
    # Using a through a chat makes b the least recently used.
    hi = [{"role": "user", "content": "hi"}]
    assert ollama_api("post", "/ollama/chat", json={"model": "a", "stream": False, "messages": hi})[0] == 200
    status, error = ollama_api("post", "/ollama/models/c/load", json={})
    assert status == 409 and error["error"]["code"] == "budget_exceeded"
    assert error["error"]["details"]["unload"] == ["b:latest"]
    assert "b:latest" in error["error"]["message"]
    assert loaded(ollama) == ["a:latest", "b:latest"]  # nothing changed
    # A loaded model only stays longer: no budget check stands in its way.
    assert ollama_api("post", "/ollama/models/a/load", json={"keep_alive": "1h"})[0] == 204
    assert ollama_api("post", "/ollama/models/c/load", json={"evict": True})[0] == 204
    assert loaded(ollama) == ["a:latest", "c:latest"]


def test_a_vram_budget_counts_bytes_and_applies_to_chats_too(ollama, ollama_api):
    for name in ("a", "b", "c"):
        ollama.seed(name, [1_000_000])  # about 1.2 MB each in VRAM once loaded
    # b is loaded before c: the least recently used.
    ollama_api("post", "/ollama/models/b/load", json={})
    ollama_api("post", "/ollama/models/c/load", json={})
    ollama_api("put", "/ollama/endpoints/local/budget", json={"vram_bytes": 2_500_000})
    hello = [{"role": "user", "content": "hello"}]
    status, error = ollama_api("post", "/ollama/chat", json={"model": "a", "messages": hello})
    assert status == 409 and error["error"]["details"]["unload"] == ["b:latest"]
    assert error["error"]["details"]["needed"] > 1_000_000 and ollama.chat_log == []
    status, reply = ollama_api(
        "post", "/ollama/chat", json={"model": "a", "messages": hello, "evict": True, "stream": False}
    )
    assert status == 200 and reply["done"]
    assert loaded(ollama) == ["a:latest", "c:latest"]
    ollama_api("put", "/ollama/endpoints/local/budget", json={"vram_bytes": 500_000})
    ollama_api("post", "/ollama/models/a/unload")
    status, error = ollama_api("post", "/ollama/models/a/load", json={"evict": True})
    assert status == 409 and error["error"]["code"] == "budget_too_small"
    assert loaded(ollama) == ["c:latest"]  # evict does not unload what would not make room


def test_a_removed_server_takes_its_budget_and_last_uses_along(ollama, ollama_api, host):
    store = host.app.extensions["open1panel_ai"].store
    ollama.seed("a", [1_000_000])
    assert ollama_api("post", "/ollama/endpoints", json={"name": "gpu2", "url": ollama.url})[0] == 201
    assert ollama_api("put", "/ollama/endpoints/gpu2/budget", json={"max_models": 1})[0] == 200
    assert ollama_api("put", "/ollama/endpoints/local/budget", json={"max_models": 3})[0] == 200
    assert ollama_api("post", "/ollama/models/a/load?endpoint=gpu2", json={})[0] == 204

    def kept(table):
        return store.query_one(f"SELECT count(*) AS n FROM {table} WHERE endpoint = 'gpu2'")["n"]

    assert (kept("ollama_budgets"), kept("ollama_model_last_use"), kept("ollama_model_use")) == (1, 1, 1)
    assert ollama_api("delete", "/ollama/endpoints/gpu2")[0] == 204
    assert (kept("ollama_budgets"), kept("ollama_model_last_use"), kept("ollama_model_use")) == (0, 0, 0)
    # Added again by the same name, the server starts without the old budget.
    assert ollama_api("post", "/ollama/endpoints", json={"name": "gpu2", "url": ollama.url})[0] == 201
    assert ollama_api("get", "/ollama/endpoints/gpu2/budget") == (
        200,
        {"endpoint": "gpu2", "vram_bytes": None, "max_models": None},
    )
    assert ollama_api("get", "/ollama/endpoints/local/budget")[1]["max_models"] == 3  # others keep theirs
