"""Try a model: the chat stream and the embed test of the API against the stand-in, and the
official ``ollama`` client against the stand-in's chat and embed."""

import json
import logging

import httpx
import ollama as ollama_client
import pytest
from ollama._types import ChatResponse

from tests.conftest import TOKEN
from tests.helpers import wait_for


def chat_lines(client, body):
    response = client.post("/api/v2/ai/ollama/chat", json=body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/x-ndjson"
    return [json.loads(line) for line in response.get_data(as_text=True).splitlines()]


def test_a_chat_streams_ollamas_lines_and_the_last_adds_figures(ollama, ollama_env, client, caplog):
    ollama.seed("llama3.2", [3000])
    messages = [
        {"role": "system", "content": "You answer like a pirate."},
        {"role": "user", "content": "secret words about foxes"},
    ]
    options = {"temperature": 0.2, "num_ctx": 2048, "top_p": 0.9, "seed": 7, "stop": ["lazy"]}
    with caplog.at_level(logging.INFO, logger="open1panel_ai.ollama.chat"):
        lines = chat_lines(client, {"model": "llama3.2", "messages": messages, "options": options, "keep_alive": "10m"})
    *tokens, last = lines
    for line in lines:  # client code written for Ollama reads every line
        ChatResponse.model_validate(line)
    assert "".join(t["message"]["content"] for t in tokens) == "The quick brown fox jumps over the"
    assert not any(t["done"] for t in tokens) and last["done"] and last["done_reason"] == "stop"
    assert last["message"] == {"role": "assistant", "content": ""}
    prompt_tokens = 5 + 4 + 4  # the words of both messages, and the template's tokens
    assert last["prompt_eval_count"] == prompt_tokens and last["eval_count"] == 7
    figures = last["figures"]
    assert figures["tokens_per_second"] == 40.0 and figures["prompt_tokens_per_second"] == 400.0
    assert figures["load_ms"] == 1500.0  # the model was not loaded: a cold load
    assert figures["ttft_ms"] == pytest.approx(1500 + prompt_tokens / 400 * 1000, abs=0.01)
    sent = ollama.chat_log[-1]["body"]
    assert sent["messages"] == messages and sent["options"] == options and sent["keep_alive"] == "10m"
    assert [m["name"] for m in ollama.ps()["models"]] == ["llama3.2:latest"]
    # An admin action: logged with the model, never with what was said.
    logged = [r.getMessage() for r in caplog.records if r.name == "open1panel_ai.ollama.chat"]
    assert any("llama3.2:latest" in text and "local" in text for text in logged)
    assert not any("secret" in text or "pirate" in text for text in logged)

    # Loaded now: the second answer reports no cold load; num_predict ends it by length.
    again = chat_lines(client, {"model": "llama3.2:latest", "messages": messages[1:], "options": {"num_predict": 3}})
    assert again[-1]["done_reason"] == "length" and again[-1]["eval_count"] == 3
    assert again[-1]["figures"]["load_ms"] == 3.0


def test_without_streaming_the_chat_answers_one_object(ollama, ollama_api):
    ollama.seed("llama3.2", [3000])
    status, reply = ollama_api(
        "post",
        "/ollama/chat",
        json={"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}], "stream": False},
    )
    assert status == 200
    assert reply["message"]["content"] == ollama.reply and reply["done"]
    assert reply["figures"]["tokens_per_second"] == 40.0


def test_a_bad_chat_is_refused_before_anything_is_sent(ollama, ollama_api):
    ollama.seed("llama3.2", [3000])
    ollama.seed("nomic-embed-text", [2000], family="nomic-bert")
    user = [{"role": "user", "content": "hi"}]
    status, error = ollama_api(
        "post",
        "/ollama/chat",
        json={"model": "llama3.2", "messages": user, "options": {"temprature": 0.5, "num_ctx": "big"}},
    )
    assert status == 400 and error["error"]["code"] == "validation_error"
    fields = error["error"]["details"]["fields"]["options"]
    assert "temperature" in fields["temprature"][0] and "integer" in fields["num_ctx"][0]
    for body in (
        {"model": "llama3.2", "messages": []},
        {"model": "llama3.2", "messages": [{"role": "robot", "content": "x"}]},
        {"model": "llama3.2", "messages": user, "options": {"stop": "a\nb"}},
        {"model": "llama3.2", "messages": user, "options": {"seed": True}},
        {"model": "llama3.2", "messages": user, "keep_alive": "-1"},
        {"model": "no good", "messages": user},
    ):
        assert ollama_api("post", "/ollama/chat", json=body)[0] == 400, body
    assert ollama.chat_log == []
    status, error = ollama_api("post", "/ollama/chat", json={"model": "missing", "messages": user})
    assert status == 404 and error["error"]["code"] == "model_not_found"
    status, error = ollama_api("post", "/ollama/chat", json={"model": "llama3.2", "messages": user, "endpoint": "nope"})
    assert status == 404 and error["error"]["code"] == "endpoint_not_found"
    # An embedding model cannot chat: Ollama's refusal becomes a 400 envelope, not a stream.
    status, error = ollama_api("post", "/ollama/chat", json={"model": "nomic-embed-text", "messages": user})
    assert status == 400 and "does not support chat" in error["error"]["details"]["ollama"]


def test_an_embedding_model_gets_an_embed_test_with_its_dimensions(ollama, ollama_api):
    ollama.seed("nomic-embed-text", [2000], family="nomic-bert")
    ollama.seed("llama3.2", [3000])
    status, result = ollama_api("post", "/ollama/embed", json={"model": "nomic-embed-text", "input": "hello"})
    assert status == 200
    assert result["dimensions"] == 384 and len(result["preview"]) == 8 and result["load_ms"] == 1500.0
    status, result = ollama_api(
        "post", "/ollama/embed", json={"model": "nomic-embed-text", "input": "hello", "dimensions": 64}
    )
    assert status == 200 and result["dimensions"] == 64
    status, error = ollama_api("post", "/ollama/embed", json={"model": "llama3.2", "input": "hello"})
    assert status == 400 and "does not support embeddings" in error["error"]["details"]["ollama"]
    status, shown = ollama_api("get", "/ollama/models/nomic-embed-text")
    assert shown["capabilities"] == ["embedding"]


@pytest.mark.server
def test_closing_the_connection_stops_the_generation_at_ollama(ollama, served):
    ollama.seed("llama3.2", [3000])
    ollama.token_delay = 0.2
    panel = served(env={"OPEN1PANEL_AI_TOKEN": TOKEN, "OLLAMA_HOST": ollama.url})
    body = {"model": "llama3.2", "messages": [{"role": "user", "content": "go"}]}
    with httpx.stream(
        "POST",
        panel.url + "/api/v2/ai/ollama/chat",
        json=body,
        timeout=10,
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        first = json.loads(next(lines))
        assert first["message"]["content"] == "The" and first["done"] is False
    record = wait_for(
        lambda: ollama.chat_log and ollama.chat_log[-1].get("cut") and ollama.chat_log[-1],
        what="the stand-in to see the chat's connection closed",
    )
    assert not record["finished"] and len(record["tokens"]) < len(ollama.reply.split())


def test_the_official_client_reads_the_standins_chat_and_embed(ollama):
    ollama.seed("llama3.2", [3000])
    ollama.seed("all-minilm", [1000], family="bert")
    client = ollama_client.Client(host=ollama.url)
    parts = list(
        client.chat(
            model="llama3.2",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            options={"temperature": 0.1, "stop": ["brown"]},
            keep_alive="1m",
        )
    )
    assert "".join(p.message.content for p in parts) == "The quick"
    assert parts[-1].done and parts[-1].eval_count == 2 and parts[-1].load_duration == 1_500_000_000
    whole = client.chat(model="llama3.2", messages=[{"role": "user", "content": "hi"}])
    assert whole.message.content == ollama.reply and whole.prompt_eval_duration > 0
    embedded = client.embed(model="all-minilm", input=["one", "two"])
    assert len(embedded.embeddings) == 2 and len(embedded.embeddings[0]) == 384
    with pytest.raises(ollama_client.ResponseError) as refused:
        client.chat(model="all-minilm", messages=[{"role": "user", "content": "hi"}])
    assert refused.value.status_code == 400
    with pytest.raises(ollama_client.ResponseError) as missing:
        client.embed(model="nope", input="x")
    assert missing.value.status_code == 404
    running = {m.model: m for m in client.ps().models}
    assert set(running) == {"llama3.2:latest", "all-minilm:latest"}
