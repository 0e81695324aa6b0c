"""A memory budget per Ollama server: at most so many bytes of VRAM, or so many loaded models.

Ollama itself loads whatever it is asked to and, when memory runs short, unloads or spills to
the CPU on its own terms. A budget lets the admin say how much of a shared GPU the panel's
loads may take. Before a load (the load route, a chat, a benchmark) the panel checks the
budget: a load that would go past it is refused with 409 ``budget_exceeded``, naming the models
that would have to be unloaded, least recently used first; asked again with ``evict: true``,
the panel unloads those models and then loads.

- A model's need is its size on disk (its weights; context memory comes on top). A model
  already loaded needs nothing more.
- In use is the ``size_vram`` of the loaded models, as ``/api/ps`` reports it.
- Least recently used: the panel records when it last loaded or used each model (load, chat,
  embed, benchmark). Models it never used (loaded by other clients) count as older than all
  of those, the one expiring first being the oldest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hookspecs.ollama import RunningModel
from open1panel_ai import errors
from open1panel_ai.i18n import Message, human_bytes
from open1panel_ai.ollama import names
from open1panel_ai.store import timestamp

if TYPE_CHECKING:
    from open1panel_ai.ollama.service import OllamaService
    from open1panel_ai.store import Store

MIGRATIONS = [
    """
    CREATE TABLE ollama_budgets (
        endpoint TEXT PRIMARY KEY,
        vram_bytes INTEGER,
        max_models INTEGER,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE ollama_model_last_use (
        endpoint TEXT NOT NULL,
        model TEXT NOT NULL,
        used_at TEXT NOT NULL,
        PRIMARY KEY (endpoint, model)
    );
    """,
]


class MemoryBudget:
    """Keeps each endpoint's budget and checks loads against it."""

    def __init__(self, service: OllamaService, store: Store) -> None:
        self._service = service
        self._store = store
        store.migrate("ollama_budget", MIGRATIONS)

    def get(self, endpoint: str) -> dict[str, Any]:
        """``{"endpoint", "vram_bytes", "max_models"}``; None in a field means no limit."""
        self._service.endpoint(endpoint)
        row = self._store.query_one("SELECT vram_bytes, max_models FROM ollama_budgets WHERE endpoint = ?", (endpoint,))
        return {
            "endpoint": endpoint,
            "vram_bytes": row["vram_bytes"] if row else None,
            "max_models": row["max_models"] if row else None,
        }

    def set(self, endpoint: str, vram_bytes: int | None, max_models: int | None) -> dict[str, Any]:
        """Set (or, with both None, remove) the budget of ``endpoint``."""
        self._service.endpoint(endpoint)
        if vram_bytes is None and max_models is None:
            self._store.execute("DELETE FROM ollama_budgets WHERE endpoint = ?", (endpoint,))
        else:
            self._store.execute(
                "INSERT OR REPLACE INTO ollama_budgets (endpoint, vram_bytes, max_models, updated_at) "
                "VALUES (?, ?, ?, ?)",
                (endpoint, vram_bytes, max_models, timestamp()),
            )
        return self.get(endpoint)

    def forget_endpoint(self, endpoint: str) -> None:
        """Drop the budget and the recorded uses of a removed endpoint, so a server added again
        under the same name starts without either."""
        with self._store.transaction() as db:
            db.execute("DELETE FROM ollama_budgets WHERE endpoint = ?", (endpoint,))
            db.execute("DELETE FROM ollama_model_last_use WHERE endpoint = ?", (endpoint,))

    def note_use(self, endpoint: str, model: str) -> None:
        """Record that the panel used ``model`` now (for least-recently-used order)."""
        self._store.execute(
            "INSERT OR REPLACE INTO ollama_model_last_use (endpoint, model, used_at) VALUES (?, ?, ?)",
            (endpoint, _parsed(model).key, timestamp()),
        )

    def plan(self, endpoint: str, model: str) -> dict[str, Any]:
        """What loading ``model`` on ``endpoint`` means for its budget: ``fits`` (no budget, the
        model is loaded already, or it fits), else ``unload`` (names, least recently used first)
        and ``possible`` (False when even unloading every other model would not make room).
        Also ``needed`` and ``in_use`` (bytes) and the budget itself."""
        budget = self.get(endpoint)
        plan = {"fits": True, "unload": [], "possible": True, "needed": 0, "in_use": 0, "budget": budget}
        if budget["vram_bytes"] is None and budget["max_models"] is None:
            return plan
        url = self._service.endpoint(endpoint)["url"]
        provider = self._service.provider()
        target = _parsed(model)
        found = self._service.existing_model(url, target)
        if found is None:
            return plan  # Ollama answers for an unknown model itself
        running = [r for r in provider.running_models(url) if isinstance(r, dict)]
        for loaded in running:
            same_name = names.is_valid(loaded.get("name")) and names.parse(loaded["name"]).key == target.key
            if same_name or (found.get("digest") and loaded.get("digest") == found.get("digest")):
                return plan  # already loaded: it only stays longer
        needed = _bytes(found.get("size"))
        others = sorted(running, key=self._age_key(endpoint))
        plan.update(needed=needed, in_use=sum(_bytes(r.get("size_vram")) for r in others))

        def over(remaining: list[RunningModel]) -> bool:
            if budget["max_models"] is not None and len(remaining) + 1 > budget["max_models"]:
                return True
            in_vram = sum(_bytes(r.get("size_vram")) for r in remaining)
            return budget["vram_bytes"] is not None and in_vram + needed > budget["vram_bytes"]

        remaining, unload = list(others), []
        while remaining and over(remaining):
            unload.append(remaining.pop(0))
        plan["unload"] = [str(r.get("name", "")) for r in unload]
        plan["possible"] = not over(remaining)
        plan["fits"] = plan["possible"] and not unload
        return plan

    def _age_key(self, endpoint: str) -> Callable[[RunningModel], tuple[bool, str, str]]:
        """Sort key of loaded models, least recently used first."""
        rows = self._store.query("SELECT model, used_at FROM ollama_model_last_use WHERE endpoint = ?", (endpoint,))
        used = {row["model"]: row["used_at"] for row in rows}

        def key(loaded: RunningModel) -> tuple[bool, str, str]:
            name = loaded.get("name")
            at = used.get(names.parse(name).key) if names.is_valid(name) else None
            return (at is not None, at or "", str(loaded.get("expires_at") or ""))

        return key

    def admit(self, endpoint: str, model: str, evict: bool) -> list[str]:
        """Make room for loading ``model``: nothing when it fits; with ``evict``, unload the
        models :meth:`plan` names and return their names; else raise 409 ``budget_exceeded``
        naming them (``details.unload``). A model larger than the budget itself is refused with
        409 ``budget_too_small``, evict or not. The use is recorded either way it goes ahead."""
        plan = self.plan(endpoint, model)
        budget = plan["budget"]
        details = {
            "endpoint": endpoint,
            "model": model,
            "unload": plan["unload"],
            "needed": plan["needed"],
            "in_use": plan["in_use"],
            "vram_bytes": budget["vram_bytes"],
            "max_models": budget["max_models"],
        }
        if not plan["possible"]:
            raise errors.Conflict(
                Message("ollama.budget.too_small", model=model, endpoint=endpoint, needed=human_bytes(plan["needed"])),
                code="budget_too_small",
                details=details,
            )
        if plan["unload"] and not evict:
            raise errors.Conflict(
                Message("ollama.budget.exceeded", model=model, endpoint=endpoint, unload=", ".join(plan["unload"])),
                code="budget_exceeded",
                details=details,
            )
        if plan["unload"]:
            url = self._service.endpoint(endpoint)["url"]
            for name in plan["unload"]:
                self._service.provider().unload(url, name)
        self.note_use(endpoint, model)
        return plan["unload"]


def _parsed(model: str) -> names.ModelName:
    try:
        return names.parse(model)
    except names.InvalidModelName as exc:
        raise errors.BadRequest(
            exc.args[0], code="invalid_model_name", details={"fields": {"name": [exc.args[0]]}}
        ) from None


def _bytes(value: Any) -> int:
    """A byte count Ollama reported; anything else (it is untrusted) counts as 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
