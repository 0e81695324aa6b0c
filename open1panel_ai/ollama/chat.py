"""Try a model: a chat streamed from Ollama, with figures from its final statistics, and an
embed test for embedding models. No Flask here.

The chat answers NDJSON lines shaped like Ollama's own ``/api/chat`` stream, so client code
written for Ollama reads it: one line per token, then a ``done`` line with Ollama's statistics
fields, to which the panel adds ``figures`` (time to first token, tokens per second, prompt
tokens per second, load time). Every line is rebuilt from its parsed fields, never passed on
as Ollama wrote it (what a server answers is untrusted). An error after the stream started is,
as with Ollama, a last line ``{"error": "..."}``. Closing the stream (the client went away)
closes the connection to Ollama, which stops generating.

Chatting is an admin action: it is logged with who, which model and server and how many
messages, never with what they say.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, cast

from hookspecs.ollama import ChatLine, ChatMessage, ChatRequest, EmbedRequest
from open1panel_ai import errors
from open1panel_ai.i18n import Message
from open1panel_ai.ollama import names, parameters
from open1panel_ai.ollama.provider import ERROR_TEXT_LIMIT

if TYPE_CHECKING:
    from open1panel_ai.ollama.budget import MemoryBudget
    from open1panel_ai.ollama.service import OllamaService

log = logging.getLogger(__name__)

ROLES = ("system", "user", "assistant", "tool")
#: Ollama's statistics fields of a final line (durations in nanoseconds, counts in tokens).
STATISTICS = (
    "total_duration",
    "load_duration",
    "prompt_eval_count",
    "prompt_eval_duration",
    "eval_count",
    "eval_duration",
)
NANOSECONDS = 1_000_000_000
#: How many numbers of a vector the embed test shows.
PREVIEW = 8


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def figures(final: Mapping[str, Any]) -> dict[str, float | None]:
    """What a person wants to know from a final line's statistics (None where Ollama did not
    say): ``ttft_ms``, the time to the first token (loading plus reading the prompt);
    ``tokens_per_second`` generated; ``prompt_tokens_per_second``; ``load_ms``; ``total_ms``."""
    stats = {name: _count(final.get(name)) for name in STATISTICS}

    def rate(count: str, duration: str) -> float | None:
        done, took = stats[count], stats[duration]
        if done is None or not took:
            return None
        return round(done / (took / NANOSECONDS), 2)

    def ms(value: int | None) -> float | None:
        return None if value is None else round(value / 1_000_000, 2)

    ttft = None
    prompt_duration = stats["prompt_eval_duration"]
    if prompt_duration is not None:
        ttft = ms((stats["load_duration"] or 0) + prompt_duration)
    return {
        "ttft_ms": ttft,
        "tokens_per_second": rate("eval_count", "eval_duration"),
        "prompt_tokens_per_second": rate("prompt_eval_count", "prompt_eval_duration"),
        "load_ms": ms(stats["load_duration"]),
        "total_ms": ms(stats["total_duration"]),
    }


def clean_line(line: Mapping[str, Any]) -> dict[str, Any]:
    """A chat line rebuilt from the fields Ollama documents, each of its type."""
    raw_message = line.get("message")
    message: dict[str, Any] = raw_message if isinstance(raw_message, dict) else {}
    out_message = {
        "role": message.get("role") if isinstance(message.get("role"), str) else "assistant",
        "content": message.get("content") if isinstance(message.get("content"), str) else "",
    }
    if isinstance(message.get("thinking"), str):
        out_message["thinking"] = message["thinking"]
    out: dict[str, Any] = {
        "model": line.get("model") if isinstance(line.get("model"), str) else "",
        "created_at": line.get("created_at") if isinstance(line.get("created_at"), str) else "",
        "message": out_message,
        "done": line.get("done") is True,
    }
    if out["done"]:
        if isinstance(line.get("done_reason"), str):
            out["done_reason"] = line["done_reason"]
        for name in STATISTICS:
            if _count(line.get(name)) is not None:
                out[name] = line[name]
    return out


def _ndjson(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


class Chat:
    """Chats and embed tests on the endpoints of the Ollama service."""

    def __init__(self, service: OllamaService, budget: MemoryBudget) -> None:
        self._service = service
        self._budget = budget

    def _target(self, endpoint: str, model: str) -> tuple[str, str]:
        url = self._service.endpoint(endpoint)["url"]
        try:
            return url, names.parse(model).short
        except names.InvalidModelName as exc:
            raise errors.BadRequest(
                exc.args[0], code="invalid_model_name", details={"fields": {"model": [exc.args[0]]}}
            ) from None

    def start(
        self,
        endpoint: str,
        model: str,
        messages: list[dict[str, Any]],
        options: dict[str, Any] | None = None,
        keep_alive: str | int | None = None,
        evict: bool = False,
        user: str | None = None,
    ) -> Iterator[bytes]:
        """Start a chat and return its NDJSON lines (bytes). Everything that can go wrong
        before the first line (an unknown server or model, bad options, the memory budget,
        Ollama refusing the request) raises the API error here, so the caller answers with an
        error envelope instead of a stream. Closing the returned iterator stops the chat."""
        url, name = self._target(endpoint, model)
        options = parameters.check(options, "options")
        self._budget.admit(endpoint, name, evict)
        body: ChatRequest = {"model": name, "messages": cast(list[ChatMessage], messages)}
        if options:
            body["options"] = options
        if keep_alive is not None:
            body["keep_alive"] = keep_alive
        log.info(
            "admin action: %s chats with %s on %s (%d message(s))", user or "an admin", name, endpoint, len(messages)
        )
        stream = self._service.provider().chat(url, body)
        lines = iter(stream)
        try:
            first = next(lines)
        except StopIteration:
            stream.close()
            raise errors.UpstreamError(
                Message("ollama.chat.error.empty", url=url), code="ollama_error", details={"url": url}
            ) from None
        except BaseException:
            stream.close()
            raise
        return self._relay(stream, first, lines)

    @staticmethod
    def _relay(stream: Any, first: ChatLine, lines: Iterator[ChatLine]) -> Iterator[bytes]:
        def relay() -> Iterator[bytes]:
            try:
                line = first
                while True:
                    if "error" in line:
                        yield _ndjson({"error": str(line["error"])[:ERROR_TEXT_LIMIT]})
                        return
                    out = clean_line(line)
                    if out["done"]:
                        out["figures"] = figures(out)
                        yield _ndjson(out)
                        return
                    yield _ndjson(out)
                    following = next(lines, None)
                    if following is None:
                        yield _ndjson({"error": str(Message("ollama.chat.error.cut"))})
                        return
                    line = following
            except errors.ApiError as exc:  # the connection dropped part way
                yield _ndjson({"error": str(exc.message)})
            finally:
                stream.close()  # tells Ollama to stop generating

        return relay()

    @staticmethod
    def collect(lines: Iterator[bytes]) -> dict[str, Any]:
        """The reply of a chat asked for without streaming: Ollama's single object (the whole
        answer in ``message.content``) with the figures, or ``{"error"}``."""
        content, thinking, last = [], [], {}
        for raw in lines:
            last = json.loads(raw)
            if "error" in last:
                return last
            content.append(last["message"]["content"])
            thinking.append(last["message"].get("thinking", ""))
        message = {**last.get("message", {}), "content": "".join(content)}
        if any(thinking):
            message["thinking"] = "".join(thinking)
        return {**last, "message": message}

    def embed(
        self,
        endpoint: str,
        model: str,
        text: str,
        dimensions: int | None = None,
        keep_alive: str | int | None = None,
        evict: bool = False,
        user: str | None = None,
    ) -> dict[str, Any]:
        """Embed ``text`` once: the vector's ``dimensions``, its first numbers (``preview``),
        and Ollama's timings (``load_ms``, ``total_ms``)."""
        url, name = self._target(endpoint, model)
        self._budget.admit(endpoint, name, evict)
        body: EmbedRequest = {"model": name, "input": text}
        if dimensions:
            body["dimensions"] = dimensions
        if keep_alive is not None:
            body["keep_alive"] = keep_alive
        log.info("admin action: %s embeds with %s on %s", user or "an admin", name, endpoint)
        reply = self._service.provider().embed(url, body)
        vectors = reply.get("embeddings")
        vector = vectors[0] if isinstance(vectors, list) and vectors else None
        if (
            not isinstance(vector, list)
            or not vector
            or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in vector)
        ):
            raise errors.UpstreamError(
                Message("ollama.chat.error.no_vector", url=url), code="ollama_error", details={"url": url}
            )
        timing = figures(reply)
        return {
            "model": name,
            "endpoint": endpoint,
            "dimensions": len(vector),
            "preview": [round(float(x), 6) for x in vector[:PREVIEW]],
            "load_ms": timing["load_ms"],
            "total_ms": timing["total_ms"],
        }
