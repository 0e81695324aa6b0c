"""Routes shared by every feature: status, the overview, tasks, the OpenAPI document and the
landing page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, current_app, g, jsonify, render_template, request
from flask.typing import ResponseReturnValue

from open1panel_ai import __version__, errors, i18n
from open1panel_ai.i18n import Message
from open1panel_ai.openapi import build_spec
from open1panel_ai.overview import overview_of
from open1panel_ai.schemas import (
    TASK_ID,
    OverviewSchema,
    StatusSchema,
    TaskDumps,
    TaskListSchema,
    TaskQuerySchema,
    TaskSchema,
)
from open1panel_ai.tasks import TaskConflict
from open1panel_ai.web import API_PREFIX, DumpedOnce, blueprint, current_ai, in_language, operation, request_language


@blueprint.before_request
def _require_user() -> Response | None:
    user = current_ai().authenticate(request)
    if user is None:
        if request.path.startswith(API_PREFIX):
            raise errors.Unauthorized(Message("error.unauthorized"))
        return Response(
            i18n.translate("ai.sign_in_first", request_language()) + "\n", status=401, mimetype="text/plain"
        )
    g.ai_user = user
    return None


@blueprint.before_request
def _relay_to_owner() -> ResponseReturnValue | None:
    """In a process that is not the owner, the owner answers the API (see docs/scaling.md)."""
    if request.path.startswith(API_PREFIX):
        return current_ai().relayed(request)
    return None


@blueprint.context_processor
def _page_helpers() -> dict[str, Any]:
    language = request_language()
    return {
        "_": lambda key, **params: i18n.translate(key, language, **params),
        "lang": language,
        "ui_catalog": i18n.catalog(language),
    }


# -- pages ----------------------------------------------------------------------------------


@blueprint.get("/ai/")
def landing_page() -> ResponseReturnValue:
    """AIManagePage: a card per feature with its live status."""
    pages, kinds = {}, []
    for name, feature in current_ai().features.items():
        item = feature.menu_item()
        if item is not None:
            pages[name] = item["url"]
        if feature.kind is not None:
            kinds.append(feature.kind)
    return render_template("ai/index.html", feature_pages=pages, feature_kinds=kinds)


# -- API --------------------------------------------------------------------------------------

TASK_PATH = {"task_id": TASK_ID}


@blueprint.get(API_PREFIX + "/status")
@operation(summary="Each feature's provider, whether it is usable, and why not", tag="status", response=StatusSchema())
def status() -> ResponseReturnValue:
    context = current_ai()
    return _status_answer(
        {
            "version": __version__,
            "providers": context.providers.status(request_language()),
            "plugin_errors": dict(context.host.plugin_errors),
        }
    )


_status_answer = DumpedOnce(StatusSchema())


@blueprint.get(API_PREFIX + "/overview")
@operation(
    summary="The health of what runs: models per Ollama server, MCP servers by state, "
    "GPU mode, bindings in error, beside each feature's provider",
    tag="status",
    response=OverviewSchema(),
)
def overview() -> ResponseReturnValue:
    """What the landing page shows. Each feature's part is null when the feature is not running
    or its provider cannot be used (``providers`` says why); reasons and errors the panel
    composed are in the reader's language. It asks every Ollama server, so it costs a moment:
    pages fetch it when something changed (a task, an MCP server), not on a timer."""
    context = current_ai()
    language = request_language()
    return in_language(overview_of(context, context.providers.status(language)), language)


@blueprint.get(API_PREFIX + "/openapi.json")
@operation(summary="This OpenAPI document", tag="status")
def openapi_document() -> ResponseReturnValue:
    return jsonify(build_spec(current_app))


@blueprint.get(API_PREFIX + "/tasks")
@operation(summary="Background tasks, newest first", tag="tasks", query=TaskQuerySchema(), response=TaskListSchema())
def list_tasks(query: dict[str, Any]) -> ResponseReturnValue:
    # Dumped here, task by task, so that the tasks that did not change are not dumped again.
    return current_app.response_class(_task_dumps(current_ai().tasks.list(**query)), mimetype="application/json")


_task_dumps = TaskDumps()


@blueprint.get(API_PREFIX + "/tasks/<task_id>")
@operation(summary="One background task", tag="tasks", response=TaskSchema(), errors_=(404,), path=TASK_PATH)
def get_task(task_id: str) -> ResponseReturnValue:
    task = current_ai().tasks.get(task_id)
    if task is None:
        raise errors.NotFound(Message("error.no_task", id=repr(task_id)))
    return task


@blueprint.post(API_PREFIX + "/tasks/<task_id>/cancel")
@operation(
    summary="Cancel a queued or running task", tag="tasks", response=TaskSchema(), errors_=(404, 409), path=TASK_PATH
)
def cancel_task(task_id: str) -> ResponseReturnValue:
    return _change_task(current_ai().tasks.cancel, task_id)


@blueprint.post(API_PREFIX + "/tasks/<task_id>/retry")
@operation(
    summary="Run a failed, cancelled or interrupted task again",
    tag="tasks",
    response=TaskSchema(),
    errors_=(404, 409),
    path=TASK_PATH,
)
def retry_task(task_id: str) -> ResponseReturnValue:
    """The task keeps its id; work that can continue where it stopped does so."""
    return _change_task(current_ai().tasks.retry, task_id)


def _change_task(change: Callable[[str], dict[str, Any]], task_id: str) -> dict[str, Any]:
    try:
        return change(task_id)
    except KeyError:
        raise errors.NotFound(Message("error.no_task", id=repr(task_id))) from None
    except TaskConflict as exc:
        raise errors.Conflict(exc.args[0]) from None
