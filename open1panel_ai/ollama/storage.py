"""What Ollama's models folder holds, and what deleting each model would really free.

The folder (``OLLAMA_MODELS``) holds ``manifests/<host>/<namespace>/<model>/<tag>`` and
``blobs/sha256-<hex>``. Blobs are shared between models, so deleting a model frees only the
blobs no other manifest uses. Interrupted downloads stay as ``sha256-<hex>-partial`` files.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from open1panel_ai.ollama.names import DEFAULT_HOST, DEFAULT_NAMESPACE

#: Warn before a pull that would leave less than this much free space.
LOW_SPACE_BYTES = 5 << 30
#: How many of the largest models the clean-up suggestions name.
LARGEST_COUNT = 5


def disk_usage(models_dir: str | None) -> tuple[int, int] | None:
    """(free, total) bytes of the disk holding ``models_dir``, or None when not visible."""
    if not models_dir or not Path(models_dir).is_dir():
        return None
    usage = shutil.disk_usage(models_dir)
    return usage.free, usage.total


def fit_check(models_dir: str | None, needed: int) -> tuple[bool, str | None]:
    """Whether ``needed`` more bytes fit in the models folder, and a warning when they leave
    little room. A folder the panel cannot see always "fits" (Ollama will say when not)."""
    usage = disk_usage(models_dir)
    if usage is None:
        return True, None
    free, total = usage
    if needed > free:
        return False, None
    left = free - needed
    if left < min(LOW_SPACE_BYTES, total // 10):
        return True, f"After this download only {left} bytes stay free on the disk of {models_dir}."
    return True, None


def _short(parts: tuple[str, ...]) -> str:
    host, namespace, model, tag = parts
    prefix = "" if host == DEFAULT_HOST else f"{host}/"
    if prefix or namespace != DEFAULT_NAMESPACE:
        prefix += f"{namespace}/"
    return f"{prefix}{model}:{tag}"


def read_manifests(models_dir: Path) -> dict[str, dict[str, Any]]:
    """Each local model's short name → its manifest digest (bare hex) and blob digests."""
    models = {}
    root = models_dir / "manifests"
    for path in root.glob("*/*/*/*"):
        if not path.is_file():
            continue
        try:
            data = path.read_bytes()
            manifest = json.loads(data)
            blobs = [layer["digest"] for layer in manifest.get("layers", [])]
            if manifest.get("config", {}).get("digest"):
                blobs.append(manifest["config"]["digest"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        name = _short(tuple(path.relative_to(root).parts))
        models[name.lower()] = {"name": name, "digest": hashlib.sha256(data).hexdigest(), "blobs": blobs}
    return models


def _blob_size(models_dir: Path, digest: str) -> int:
    try:
        return (models_dir / "blobs" / digest.replace(":", "-")).stat().st_size
    except OSError:
        return 0


def partial_downloads(models_dir: Path) -> list[dict[str, Any]]:
    """Interrupted downloads Ollama keeps to resume: digest, bytes done, last change.

    The bytes done come from the part files: the partial blob itself is sized in full before
    the download starts, so its size says nothing."""
    found = []
    for path in (models_dir / "blobs").glob("sha256-*-partial"):
        done = 0
        for part in path.parent.glob(path.name + "-*"):
            if not part.name[len(path.name) + 1:].isdigit():
                continue  # only Ollama's part files, sha256-<hex>-partial-<n>
            try:
                # Ollama writes its Go struct as is: {"N", "Offset", "Size", "Completed"}.
                done += int(json.loads(part.read_text()).get("Completed") or 0)
            except (OSError, ValueError, AttributeError):
                continue
        stat = path.stat()
        found.append({"digest": path.name[:-len("-partial")].replace("-", ":", 1),
                      "bytes": done,
                      "modified_at": datetime.fromtimestamp(stat.st_mtime, UTC).isoformat()})
    return found


def report(models_dir: str | None, models: list[dict[str, Any]], last_loaded: dict[str, str],
           unused_days: int, now: datetime | None = None) -> dict[str, Any]:
    """The storage view of one endpoint.

    :param models: the endpoint's models as listed (``/api/tags`` entries with ``loaded``).
    :param last_loaded: model name → when the panel last saw it loaded (ISO time).
    :param unused_days: models not loaded for this many days are suggested for removal.
    """
    now = now or datetime.now(UTC)
    usage = disk_usage(models_dir)
    folder = Path(models_dir) if usage is not None else None
    manifests = read_manifests(folder) if folder else {}
    users: dict[str, int] = defaultdict(int)
    for info in manifests.values():
        for blob in set(info["blobs"]):
            users[blob] += 1
    rows = []
    for model in models:
        info = manifests.get(model["name"].lower())
        frees = None
        if info is not None:
            frees = sum(_blob_size(folder, b) for b in set(info["blobs"]) if users[b] == 1)
        rows.append({"name": model["name"], "size": model.get("size", 0), "digest": model.get("digest"),
                     "frees": frees, "loaded": bool(model.get("loaded")),
                     "last_loaded_at": last_loaded.get(model["name"]),
                     "modified_at": model.get("modified_at")})
    used = None
    if folder is not None:
        used = sum(_blob_size(folder, b) for b in users)
    partials = partial_downloads(folder) if folder else []
    return {
        "models_dir": models_dir,
        "visible": folder is not None,
        "free": usage[0] if usage else None,
        "total": usage[1] if usage else None,
        "used_by_models": used if used is not None else sum(m.get("size", 0) for m in models),
        "partial_downloads": partials,
        "partial_bytes": sum(p["bytes"] for p in partials),
        "models": rows,
        "suggestions": _suggestions(rows, unused_days, now),
    }


def _suggestions(rows: list[dict[str, Any]], unused_days: int, now: datetime) -> list[dict[str, Any]]:
    suggestions = []
    for row in sorted(rows, key=lambda r: r["size"], reverse=True)[:LARGEST_COUNT]:
        suggestions.append({"reason": "largest", "name": row["name"], "size": row["size"],
                            "frees": row["frees"]})
    cutoff = now - timedelta(days=unused_days)
    for row in rows:
        seen = row["last_loaded_at"] or row["modified_at"]
        if row["loaded"] or not seen:
            continue
        try:
            when = datetime.fromisoformat(seen)
        except ValueError:
            continue
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        if when < cutoff:
            suggestions.append({"reason": "unused", "name": row["name"], "size": row["size"],
                                "frees": row["frees"], "since": seen})
    by_digest: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if row["digest"]:
            by_digest[row["digest"]].append(row)
    for copies in by_digest.values():
        if len(copies) > 1:
            for row in copies:
                suggestions.append({"reason": "copy", "name": row["name"], "size": row["size"],
                                    "frees": row["frees"],
                                    "copies": [c["name"] for c in copies if c is not row]})
    return suggestions
