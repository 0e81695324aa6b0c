"""The standalone host's own routes and hooks: health, sign-in, the Plugins page, the layout.

Registered as the host's plugin ``panel``: it answers :func:`hookspecs.panel.panel_authenticate`
and adds the Plugins page to the menu. :func:`install` puts its routes and the request guard on
the host's app: every route but ``/healthz`` needs credentials, and a browser session needs its
CSRF token for anything that changes state.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import flask
from flask import current_app, g, jsonify, redirect, render_template, request
from flask.typing import ResponseReturnValue

from hookspecs import hookimpl
from hookspecs.panel import MenuItem, PanelUser
from open1panel_ai.host import __version__, envelope, i18n, read_form_body
from open1panel_ai.standalone import auth
from open1panel_ai.standalone.sessions import client_key

if TYPE_CHECKING:  # pragma: no cover - typing only
    from open1panel_ai.standalone.host import StandaloneHost

log = logging.getLogger(__name__)

OPEN_ENDPOINTS = frozenset({"healthz"})


def _host() -> StandaloneHost:
    host: StandaloneHost = current_app.extensions["panel_host"]
    return host


@hookimpl
def panel_authenticate(request: flask.Request, auth: Any) -> PanelUser | None:
    return _host().auth.authenticate(request, auth)


@hookimpl
def panel_menu_items() -> list[MenuItem]:
    return [{"id": "plugins", "title": i18n.titles("menu.plugins"), "url": "/plugins", "order": 1000}]


def _language() -> str:
    return i18n.negotiate(
        request.cookies.get(i18n.LANGUAGE_COOKIE), request.headers.get("Accept-Language"), request.args.get("lang")
    )


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def _safe_next(target: str | None) -> str:
    """Only a local path may follow sign-in (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _login_page(error: str | None = None, status: int = 401) -> tuple[str, int]:
    next_path = _safe_next(request.values.get("next") or request.full_path.rstrip("?"))
    if request.endpoint == "login":
        next_path = _safe_next(request.values.get("next"))
    return render_template("standalone/login.html", error=error, next_path=next_path), status


def guard() -> ResponseReturnValue | None:
    """Before every request: who is asking, and may they?"""
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    user = _host().auth.authenticate(request)
    if user is None:
        if request.mimetype in auth.FORM_TYPES:
            read_form_body()  # the sign-in form and page read its fields: within the body limit
        if request.endpoint == "login" and request.method == "POST":
            return None  # the sign-in form checks the token itself
        if _wants_json():
            return jsonify(envelope("unauthorized", i18n.translate("error.unauthorized", _language()))), 401
        return _login_page()
    g.user = user
    if user["via"] == "session" and request.method not in auth.SAFE_METHODS and not auth.csrf_ok(request):
        message = i18n.translate("panel.csrf_failed", _language())
        if _wants_json():
            return jsonify(envelope("csrf_failed", message)), 403
        return flask.Response(message + "\n", status=403, mimetype="text/plain")
    return None


def remember_language(response: flask.Response) -> flask.Response:
    chosen = request.args.get("lang")
    if chosen in i18n.LANGUAGES:
        response.set_cookie(
            i18n.LANGUAGE_COOKIE, chosen, max_age=365 * 24 * 3600, samesite="Lax", secure=request.is_secure
        )
    return response


def security_headers(response: flask.Response) -> flask.Response:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "connect-src 'self'; frame-ancestors 'none'",
    )
    return response


def page_helpers() -> dict[str, Any]:
    language = _language()
    user = getattr(g, "user", None)
    return {
        "_": lambda key, **params: i18n.translate(key, language, **params),
        "lang": language,
        "languages": i18n.LANGUAGES,
        "menu": _host().menu_items(language) if user else [],
        "user": user,
        "csrf_token": auth.csrf_token if user and user.get("via") == "session" else (lambda: ""),
        "version": __version__,
    }


def healthz() -> ResponseReturnValue:
    """Liveness for load balancers and scripts: no auth, nothing secret."""
    return jsonify({"status": "ok"})


def home() -> ResponseReturnValue:
    items = _host().menu_items(_language())
    return redirect(items[0]["url"] if items else "/plugins")


def login() -> ResponseReturnValue:
    """The sign-in form. Each client address (an IPv6 /64) may send a few wrong tokens per
    window; past that it gets 429 with ``Retry-After`` until the window ends, and the panel's
    log says so."""
    host = _host()
    if request.method == "GET":
        if getattr(g, "user", None):
            return redirect(_safe_next(request.args.get("next")))
        return _login_page()
    client = client_key(request.remote_addr)
    throttle = host.sign_in_throttle
    wait = throttle.retry_after(client)
    if wait:
        return _sign_in_blocked(wait)
    if not host.auth.matches(request.form.get("token", "").strip()):
        count, wait = throttle.failed(client)
        if wait:
            log.warning("sign-in from %s refused for %d s: %d wrong tokens", client, wait, count)
            return _sign_in_blocked(wait)
        log.warning("wrong token at sign-in from %s (%d of %d)", client, count, throttle.attempts)
        return _login_page(error=i18n.translate("login.wrong_token", _language()))
    throttle.succeeded(client)
    host.auth.sign_in()
    return redirect(_safe_next(request.form.get("next")), code=303)


def _sign_in_blocked(seconds: int) -> ResponseReturnValue:
    minutes = math.ceil(seconds / 60)
    page, status = _login_page(error=i18n.translate("panel.sign_in_blocked", _language(), count=minutes), status=429)
    return page, status, {"Retry-After": str(seconds)}


def logout() -> ResponseReturnValue:
    """Sign out: the session ends on the server, so its cookie opens nothing any more."""
    _host().auth.sign_out()
    return redirect("/login", code=303)


def plugins_page() -> ResponseReturnValue:
    """Every plugin; with ``?disable=<name>``, the dialog that asks before that plugin is
    disabled, naming the pages that stop working."""
    host = _host()
    language = _language()
    confirm = request.args.get("disable")
    if confirm == "panel" or confirm not in host.plugins or confirm in host.disabled_plugins:
        confirm = None
    return render_template(
        "standalone/plugins.html",
        plugins=sorted(host.plugins.values(), key=lambda p: p.name),
        disabled=host.disabled_plugins,
        host_plugin="panel",
        confirm=confirm,
        confirm_pages=host.menu_items_of(confirm, language) if confirm else [],
    )


def set_plugin_state(name: str) -> ResponseReturnValue:
    """Enable a plugin, or disable it once the admin confirmed (``confirm=yes``, the dialog's
    button); a disable without it shows the dialog instead, so no single click stops one."""
    host = _host()
    if name == "panel" or name not in host.plugins:
        flask.abort(404)
    disable = request.form.get("action") == "disable"
    if disable and request.form.get("confirm") != "yes":
        return redirect(f"/plugins?disable={quote(name)}#plugin-confirm", code=303)
    host.set_disabled(name, disable)
    return redirect("/plugins", code=303)


def install(host: StandaloneHost) -> None:
    app = host.app
    app.before_request(guard)
    app.after_request(remember_language)
    app.after_request(security_headers)
    app.context_processor(page_helpers)
    app.add_url_rule("/healthz", "healthz", healthz)
    app.add_url_rule("/", "home", home)
    # Every page answers with and without a trailing slash.
    app.add_url_rule("/login", "login", login, methods=["GET", "POST"], strict_slashes=False)
    app.add_url_rule("/logout", "logout", logout, methods=["POST"], strict_slashes=False)
    app.add_url_rule("/plugins", "plugins", plugins_page, strict_slashes=False)
    app.add_url_rule("/plugins/<name>", "plugin_state", set_plugin_state, methods=["POST"])
