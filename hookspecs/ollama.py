"""The values an Ollama-compatible model runtime provider exchanges with the panel.

They are JSON on the wire (Ollama's REST API), so they are :class:`~typing.TypedDict`\\ s: a
provider returns plain dicts of these shapes, exactly as the server sent them after checking
their types. A key the server may leave out is ``NotRequired``; a server may add keys of its
own, which the panel passes through untouched.
"""

# No ``from __future__ import annotations``: TypedDict reads ``NotRequired`` at class creation.
from typing import Any, NotRequired, TypedDict

from hookspecs.process import ProcessState


class ModelDetails(TypedDict, total=False):
    """What a model is made of, as Ollama's ``details`` object states it."""

    parent_model: str
    format: str
    family: str
    families: list[str] | None
    parameter_size: str
    quantization_level: str


class ModelEntry(TypedDict):
    """One local model, shaped like an entry of Ollama's ``GET /api/tags``."""

    name: str
    model: NotRequired[str]
    modified_at: NotRequired[str]
    #: Bytes on disk.
    size: int
    #: The manifest's digest, hex without the ``sha256:`` prefix.
    digest: NotRequired[str]
    details: NotRequired[ModelDetails]


class RunningModel(TypedDict):
    """One loaded model, shaped like an entry of Ollama's ``GET /api/ps``."""

    name: str
    model: NotRequired[str]
    #: Bytes the model holds in memory, VRAM included.
    size: int
    #: Bytes of that in GPU memory.
    size_vram: NotRequired[int]
    digest: NotRequired[str]
    details: NotRequired[ModelDetails]
    #: When Ollama unloads it (RFC 3339).
    expires_at: NotRequired[str]
    context_length: NotRequired[int]


class ModelInfo(TypedDict, total=False):
    """One model's details, shaped like Ollama's ``POST /api/show`` reply."""

    modelfile: str
    parameters: str
    template: str
    system: str
    license: str
    details: ModelDetails
    model_info: dict[str, Any]
    capabilities: list[str]
    modified_at: str


class ProgressLine(TypedDict, total=False):
    """One line of a pull or create stream (``POST /api/pull``, ``POST /api/create``).

    ``status`` says the step (``"pulling manifest"``, ``"pulling <digest>"``, ``"success"``);
    ``total`` and ``completed`` count bytes of the layer ``digest`` while it downloads; a line
    with ``error`` ends the stream with that failure.
    """

    status: str
    digest: str
    total: int
    completed: int
    error: str


class ChatMessage(TypedDict):
    """One message of a chat, as Ollama's ``/api/chat`` takes and streams them."""

    #: ``system``, ``user``, ``assistant`` or ``tool``.
    role: str
    content: str
    #: The model's reasoning, from a thinking model (streamed only).
    thinking: NotRequired[str]


class ChatRequest(TypedDict):
    """What the panel asks of ``POST /api/chat`` (the provider streams the reply)."""

    model: str
    messages: list[ChatMessage]
    #: Model options (``temperature``, ``num_ctx``, ...), checked by the panel.
    options: NotRequired[dict[str, Any]]
    #: How long the model stays loaded after the reply: seconds or a Go duration (``"5m"``).
    keep_alive: NotRequired[str | int]


class ChatLine(TypedDict, total=False):
    """One line of a streamed chat reply (``POST /api/chat``).

    Lines with ``done`` false carry the next piece of ``message``; the last line has ``done``
    true, ``done_reason`` and the statistics (durations in nanoseconds, counts in tokens). A
    line with ``error`` ends the stream with that failure.
    """

    model: str
    created_at: str
    message: ChatMessage
    done: bool
    done_reason: str
    total_duration: int
    load_duration: int
    prompt_eval_count: int
    prompt_eval_duration: int
    eval_count: int
    eval_duration: int
    error: str


class EmbedRequest(TypedDict):
    """What the panel asks of ``POST /api/embed``."""

    model: str
    #: One text, or several (one vector each).
    input: str | list[str]
    #: Shorten each vector to this many dimensions, where the model allows it.
    dimensions: NotRequired[int]
    keep_alive: NotRequired[str | int]


class EmbedReply(TypedDict, total=False):
    """Ollama's ``POST /api/embed`` reply: one vector per input, and timings (nanoseconds)."""

    model: str
    embeddings: list[list[float]]
    total_duration: int
    load_duration: int
    prompt_eval_count: int


class OllamaEndpoint(TypedDict):
    """An Ollama server the panel manages (``GET /ollama/endpoints``)."""

    #: ``local`` for the default one (``OLLAMA_HOST``), else the name the admin gave it.
    name: str
    #: ``http(s)://host:port``, normalised.
    url: str
    #: Where that server keeps its models, when the panel knows it (for disk use).
    models_dir: NotRequired[str | None]
    #: Whether it is the default one, which cannot be deleted.
    builtin: NotRequired[bool]


class LoadedModel(TypedDict):
    """A loaded model of one endpoint, as features other than Ollama see it (GPU memory per
    model, alerts)."""

    endpoint: str
    name: str
    size: int
    size_vram: NotRequired[int]


class OllamaServerState(ProcessState):
    """How the local Ollama server is doing, measured now (``OllamaServerProvider.state``).

    Its status is never ``unhealthy``: the panel's watcher, not the provider, says whether the
    server answers.
    """


__all__ = [
    "ChatLine",
    "ChatMessage",
    "ChatRequest",
    "EmbedReply",
    "EmbedRequest",
    "LoadedModel",
    "ModelDetails",
    "ModelEntry",
    "ModelInfo",
    "OllamaEndpoint",
    "OllamaServerState",
    "ProgressLine",
    "RunningModel",
]
