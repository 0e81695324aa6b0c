"""Flask-Admin as the host panel of open1panel-ai.

An admin app built on Flask-Admin, with its own login, mounts the AI plugin with
:func:`open1panel_ai.host.mount`: the plugin's pages join Flask-Admin's menu, and its pages, API
and Socket.IO namespace answer only to whoever signed in to this app.

Run it with ``python app.py --port 5000 --data-dir /tmp/ai`` and sign in as ``admin`` with the
password in ``EXAMPLE_ADMIN_PASSWORD``.
"""

from __future__ import annotations

import argparse
import hmac
import os
import secrets

from flask import Flask, abort, redirect, render_template, request, session, url_for
from flask_admin import Admin, AdminIndexView, expose
from flask_admin.menu import MenuLink
from flask_socketio import SocketIO

from open1panel_ai.host import mount

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class Home(AdminIndexView):
    """Flask-Admin's home page, for signed-in users only."""

    @expose("/")
    def index(self):
        return self.render("admin_home.html", user=session["user"])

    def is_accessible(self):
        return "user" in session

    def inaccessible_callback(self, name, **kwargs):
        return redirect(url_for("login", next=request.path))


def create_app(data_dir: str, password: str) -> tuple[Flask, SocketIO]:
    app = Flask(__name__)
    app.secret_key = secrets.token_hex(32)
    socketio = SocketIO(app, async_mode="threading")
    admin = Admin(app, name="Example admin", index_view=Home(url="/admin"))

    # -- mounting open1panel-ai: the whole adapter --------------------------------------------
    def who(request, auth):
        return {"name": session["user"], "via": "session"} if "user" in session else None

    panel = mount(app, socketio, authenticate=who, data_dir=data_dir)
    for item in panel.menu_items("en"):
        admin.add_link(MenuLink(name=item["title"], url=item["url"], category="AI"))
    app.context_processor(
        lambda: {
            "menu": panel.menu_items(request.args.get("lang") or "en"),
            "csrf_token": csrf_token,
            "user": session.get("user"),
        }
    )
    # -------------------------------------------------------------------------------------------

    def csrf_token() -> str:
        return session.setdefault("csrf", secrets.token_urlsafe(32))

    @app.before_request
    def check_csrf():
        """A signed-in browser's changes must carry the token of its pages."""
        if request.method not in SAFE_METHODS and "user" in session:
            sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token") or ""
            expected = session.get("csrf")
            if not expected or not hmac.compare_digest(sent, expected):
                abort(403)

    @app.route("/login", methods=["GET", "POST"])
    def login():
        error = None
        if request.method == "POST":
            if request.form.get("user") == "admin" and hmac.compare_digest(request.form.get("password", ""), password):
                session.clear()
                session["user"] = "admin"
                return redirect(request.args.get("next") or "/admin/")
            error = "Wrong user name or password."
        return render_template("login.html", error=error)

    @app.post("/logout")
    def logout():
        session.clear()
        return redirect(url_for("login"))

    app.extensions["example_panel"] = panel
    return app, socketio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--data-dir", required=True)
    args = parser.parse_args()
    app, socketio = create_app(args.data_dir, os.environ["EXAMPLE_ADMIN_PASSWORD"])
    try:
        socketio.run(app, host=args.host, port=args.port, allow_unsafe_werkzeug=True)
    finally:
        app.extensions["example_panel"].shutdown()


if __name__ == "__main__":
    main()
