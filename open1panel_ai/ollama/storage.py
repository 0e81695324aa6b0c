"""What Ollama's models folder holds, and what deleting each model would really free.

The folder (``OLLAMA_MODELS``) holds ``manifests/<host>/<namespace>/<model>/<tag>`` and
``blobs/sha256-<hex>``. Blobs are shared between models, so deleting a model frees only the
blobs no other manifest uses. Interrupted downloads stay as ``sha256-<hex>-partial`` files.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import statistics
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from open1panel_ai.i18n import Message, human_bytes
from open1panel_ai.ollama.names import DEFAULT_HOST, DEFAULT_NAMESPACE

#: Warn before a pull that would leave less than this much free space.
LOW_SPACE_BYTES = 5 << 30
#: A model is suggested as unusually large when deleting it frees this many times the median
#: of what deleting each model frees...
LARGE_FACTOR = 3
#: ...among at least this many models (with fewer, no size is unusual).
LARGE_MIN_MODELS = 3
#: A partial download changed within this many seconds is being written now (Ollama counts a
#: part silent for 30 s as stalled and starts it again).
ACTIVE_SECONDS = 60


def disk_usage(models_dir: str | None) -> tuple[int, int] | None:
    """(free, total) bytes of the disk holding ``models_dir``, or None when not visible."""
    if not models_dir or not Path(models_dir).is_dir():
        return None
    usage = shutil.disk_usage(models_dir)
    return usage.free, usage.total


def fit_check(models_dir: str | None, needed: int) -> tuple[bool, Message | None]:
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
        return True, Message("ollama.pull.warning.low_space", left=human_bytes(left), folder=models_dir)
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


def partial_downloads(models_dir: Path, now: datetime | None = None) -> list[dict[str, Any]]:
    """Downloads Ollama keeps to resume, or is writing now: digest, size, bytes on disk, bytes
    its part files record, last change and whether it is being written.

    Ollama sizes ``sha256-<hex>-partial`` in full (a sparse file) before the first byte
    arrives, and records a part's progress in its ``-partial-<n>`` JSON file only when the part
    ends or the download stops; a part is 100 MB to 1 GB, so during a download the part files
    may say 0 for minutes. What the partial blob really holds on disk (its allocated blocks)
    counts the bytes written so far; where a file system does not report blocks, the part
    files' sum stands in."""
    now = now or datetime.now(UTC)
    found = []
    for path in (models_dir / "blobs").glob("sha256-*-partial"):
        recorded = 0
        for part in path.parent.glob(path.name + "-*"):
            if not part.name[len(path.name) + 1 :].isdigit():
                continue  # only Ollama's part files, sha256-<hex>-partial-<n>
            try:
                # Ollama writes its Go struct as is: {"N", "Offset", "Size", "Completed"}.
                recorded += int(json.loads(part.read_text()).get("Completed") or 0)
            except (OSError, ValueError, AttributeError, TypeError):
                continue
        try:
            stat = path.stat()
        except OSError:
            continue  # finished (renamed) while we looked
        on_disk = min(stat.st_blocks * 512, stat.st_size) if hasattr(stat, "st_blocks") else 0
        changed = datetime.fromtimestamp(stat.st_mtime, UTC)
        found.append(
            {
                "digest": path.name[: -len("-partial")].replace("-", ":", 1),
                "size": stat.st_size,
                "bytes": max(on_disk, recorded),
                "recorded": recorded,
                "active": now - changed < timedelta(seconds=ACTIVE_SECONDS),
                "modified_at": changed.isoformat(),
            }
        )
    return found


def _allocated(path: Path) -> int:
    """Bytes a file takes on disk (its allocated blocks; a sparse partial blob takes only what
    was written), or its size where the file system does not report blocks; 0 when gone."""
    try:
        stat = path.stat()
    except OSError:
        return 0
    return min(stat.st_blocks * 512, stat.st_size) if hasattr(stat, "st_blocks") else stat.st_size


def delete_partials(models_dir: Path, pulling: set[str] | None, now: datetime | None = None) -> dict[str, Any]:
    """Delete the partial downloads of ``models_dir`` that nothing is writing: each
    ``sha256-<hex>-partial`` with its ``-partial-<n>`` part files. Complete blobs are never
    touched.

    :param pulling: the digests (``sha256:<hex>``) the panel's running pulls of this server are
        downloading; None when a running pull does not know its layers yet, so that every
        partial may be one it is about to resume.

    A partial is kept, and listed in ``skipped`` with its ``reason``, when a pull of the panel
    downloads it (``pulling``), or when it changed within :data:`ACTIVE_SECONDS` (``active``:
    written now by a pull the panel did not start, such as ``ollama pull`` on the host).
    Returns ``freed`` (bytes the deleted files took on disk), ``deleted`` (their digests) and
    ``skipped``."""
    now = now or datetime.now(UTC)
    freed = 0
    deleted: list[str] = []
    skipped: list[dict[str, Any]] = []
    for partial in partial_downloads(models_dir, now):
        digest = partial["digest"]
        if pulling is None or digest in pulling:
            skipped.append({"digest": digest, "reason": "pulling"})
            continue
        if partial["active"]:
            skipped.append({"digest": digest, "reason": "active"})
            continue
        path = models_dir / "blobs" / (digest.replace(":", "-", 1) + "-partial")
        parts = [p for p in path.parent.glob(path.name + "-*") if p.name[len(path.name) + 1 :].isdigit()]
        removed = False
        for file in [path, *parts]:
            size = _allocated(file)
            try:
                file.unlink()
            except FileNotFoundError:
                continue  # finished (renamed) or removed meanwhile
            freed += size
            removed = True
        if removed:
            deleted.append(digest)
    return {"freed": freed, "deleted": deleted, "skipped": skipped}


def report(
    models_dir: str | None,
    models: list[dict[str, Any]],
    last_loaded: dict[str, str],
    unused_days: int,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The storage view of one endpoint.

    :param models: the endpoint's models as listed (``/api/tags`` entries with ``loaded``).
    :param last_loaded: model name → when the panel last saw it loaded (ISO time).
    :param unused_days: models not loaded for this many days are suggested for removal.
    """
    now = now or datetime.now(UTC)
    usage = disk_usage(models_dir)
    folder = Path(models_dir) if models_dir is not None and usage is not None else None
    manifests = read_manifests(folder) if folder else {}
    users: dict[str, set[str]] = defaultdict(set)
    for entry in manifests.values():
        for blob in entry["blobs"]:
            users[blob].add(entry["name"])
    rows = []
    for model in models:
        info = manifests.get(model["name"].lower())
        frees: int | None = None
        shared_bytes: int | None = None
        shared_with: list[str] = []
        if info is not None and folder is not None:  # a manifest was read from the folder
            own = set(info["blobs"])
            frees = sum(_blob_size(folder, b) for b in own if len(users[b]) == 1)
            shared_bytes = sum(_blob_size(folder, b) for b in own if len(users[b]) > 1)
            shared_with = sorted({other for b in own for other in users[b]} - {info["name"]})
        rows.append(
            {
                "name": model["name"],
                "size": model.get("size", 0),
                "digest": model.get("digest"),
                "frees": frees,
                "shared_bytes": shared_bytes,
                "shared_with": shared_with,
                "loaded": bool(model.get("loaded")),
                "last_loaded_at": last_loaded.get(model["name"]),
                "modified_at": model.get("modified_at"),
            }
        )
    used = None
    if folder is not None:
        used = sum(_blob_size(folder, b) for b in users)
    partials = partial_downloads(folder, now) if folder else []
    return {
        "models_dir": models_dir,
        "visible": folder is not None,
        "free": usage[0] if usage else None,
        "total": usage[1] if usage else None,
        "used_by_models": used if used is not None else sum(m.get("size", 0) for m in models),
        "partial_downloads": partials,
        "partial_bytes": sum(p["bytes"] for p in partials),
        "partial_active": sum(1 for p in partials if p["active"]),
        "models": rows,
        "suggestions": suggestions(rows, unused_days, now),
    }


def _weight(row: dict[str, Any]) -> int:
    """What deleting a model frees, or its size when the folder is not visible."""
    return row["frees"] if row["frees"] is not None else row["size"]


def suggestions(rows: list[dict[str, Any]], unused_days: int, now: datetime) -> list[dict[str, Any]]:
    """What is worth deleting, and why; each suggestion says what deleting it really frees.

    - ``large``: an outlier, a model whose deletion frees at least :data:`LARGE_FACTOR` times
      the median of what deleting each model frees, among at least :data:`LARGE_MIN_MODELS`
      models that free anything. A server whose models are all of a size has none, whatever
      their size; a model whose blobs other models use is measured by what it alone holds.
    - ``unused``: not loaded (as far as the panel saw) for ``unused_days``, nor modified since.
    - ``copy``: another name for the same model (the same manifest digest) as an older one;
      it holds no blob of its own, so deleting it frees nothing but tidies the list.
    """
    found = []
    weighed = [row for row in rows if _weight(row) > 0]
    if len(weighed) >= LARGE_MIN_MODELS:
        typical = statistics.median(_weight(row) for row in weighed)
        for row in sorted(weighed, key=_weight, reverse=True):
            if _weight(row) >= LARGE_FACTOR * typical:
                found.append(
                    {
                        "reason": "large",
                        "name": row["name"],
                        "size": row["size"],
                        "frees": row["frees"],
                        "typical": int(typical),
                    }
                )
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
            found.append(
                {"reason": "unused", "name": row["name"], "size": row["size"], "frees": row["frees"], "since": seen}
            )
    by_digest: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if row["digest"]:
            by_digest[row["digest"]].append(row)
    for copies in by_digest.values():
        if len(copies) < 2:
            continue
        original, *others = sorted(copies, key=lambda r: (r["modified_at"] or "", r["name"]))
        for row in others:
            found.append(
                {
                    "reason": "copy",
                    "name": row["name"],
                    "size": row["size"],
                    "frees": row["frees"],
                    "copies": [original["name"]],
                }
            )
    return found
