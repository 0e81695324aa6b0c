"""A plugin found through a real entry point, giving the served panel work to do in tests.

``testkit.child`` starts a child process and keeps it until the task is cancelled or the panel
stops; its pid is written to the task's message so a test can check it was reaped.
``testkit.steps`` reports ``steps`` progress steps, ``delay`` seconds apart.
Both are resumable.
"""

import subprocess

from hookspecs import hookimpl
from open1panel_ai.tasks import TaskKind


def run_child(task):
    child = subprocess.Popen(["sleep", "600"])
    task.on_cancel(child.terminate)
    task.progress(completed=0, total=1, message=f"child pid {child.pid}")
    try:
        while child.poll() is None and not task.cancelled:
            task.wait(0.1)
    finally:
        child.terminate()
        child.wait()
    task.raise_if_cancelled()


def run_steps(task):
    steps = int(task.params.get("steps", 10))
    for step in range(1, steps + 1):
        if task.wait(float(task.params.get("delay", 0.01))):
            task.raise_if_cancelled()
        task.progress(completed=step, total=steps, message=f"step {step} of {steps}")


@hookimpl(trylast=True)
def panel_startup(host):
    tasks = host.app.extensions["open1panel_ai"].tasks
    tasks.register(TaskKind("testkit.child", run_child, resumable=True))
    tasks.register(TaskKind("testkit.steps", run_steps, resumable=True))


from flask import Blueprint, current_app, jsonify, request  # noqa: E402

blueprint = Blueprint("testkit", __name__)


@blueprint.before_request
def _require_user():
    host = current_app.extensions["panel_host"]
    if host.plugin_manager.hook.panel_authenticate(request=request, auth=None) is None:
        return jsonify({"error": "unauthorized"}), 401
    return None


@blueprint.post("/testkit/tasks")
def submit():
    body = request.get_json()
    tasks = current_app.extensions["open1panel_ai"].tasks
    return jsonify(tasks.submit(body["kind"], body["target"], body.get("params", {}))), 202


@hookimpl
def panel_blueprints():
    return [blueprint]
