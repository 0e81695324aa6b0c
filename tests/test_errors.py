"""Every API failure is the JSON error envelope with a fitting status, never HTML."""

import io
import json
import re

import pytest
from flask import Blueprint

from hookspecs import hookimpl
from tests.conftest import TOKEN


def assert_envelope(response, status, code=None):
    assert response.status_code == status
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["message"]
    if code:
        assert body["error"]["code"] == code
    text = response.get_data(as_text=True)
    assert "<html" not in text.lower() and "Traceback" not in text
    return body["error"]


def test_unknown_api_routes_are_404_envelopes(client, auth_headers):
    assert_envelope(client.get("/api/v2/ai/no/such/route", headers=auth_headers), 404, "not_found")


def test_wrong_methods_are_405_envelopes_with_allow(client, auth_headers):
    response = client.delete("/api/v2/ai/status", headers=auth_headers)
    error = assert_envelope(response, 405, "method_not_allowed")
    assert "GET" in error["details"]["allowed"] and "GET" in response.headers["Allow"]


def test_missing_things_are_404_envelopes(client, auth_headers):
    error = assert_envelope(client.get("/api/v2/ai/tasks/nope", headers=auth_headers), 404)
    assert "nope" in error["message"]


def test_bad_query_values_are_400_with_field_errors(client, auth_headers):
    error = assert_envelope(
        client.get("/api/v2/ai/tasks?limit=0&status=bogus", headers=auth_headers), 400, "validation_error"
    )
    assert set(error["details"]["fields"]) == {"limit", "status"}


def test_unknown_query_fields_are_refused(client, auth_headers):
    error = assert_envelope(client.get("/api/v2/ai/tasks?sneaky=1", headers=auth_headers), 400)
    assert "sneaky" in error["details"]["fields"]


def test_outside_the_api_the_host_keeps_its_own_error_pages(client, auth_headers):
    response = client.get("/no-such-page", headers=auth_headers)
    assert response.status_code == 404 and response.mimetype != "application/json"


# A plugin that adds a body-taking route and a crashing route under the API prefix, to check
# the envelope for bodies and for unexpected exceptions in any view there.
from marshmallow import Schema, fields  # noqa: E402

from open1panel_ai.web import API_PREFIX, MAX_JSON_BODY, operation  # noqa: E402


class EchoSchema(Schema):
    name = fields.String(required=True)
    count = fields.Integer(load_default=1)


probe_blueprint = Blueprint("error_probe", __name__)


@probe_blueprint.post(API_PREFIX + "/_probe/echo")
@operation(summary="echo", tag="probe", body=EchoSchema())
def echo(body):
    return body


@probe_blueprint.get(API_PREFIX + "/_probe/crash")
@operation(summary="crash", tag="probe")
def crash():
    raise RuntimeError("secret internal detail")


class ProbePlugin:
    @hookimpl
    def panel_blueprints(self):
        return [probe_blueprint]


@pytest.fixture
def probe(make_host, auth_headers):
    return make_host(("probe", ProbePlugin())).app.test_client()


def test_unexpected_exceptions_are_500_envelopes_without_details(probe, auth_headers):
    error = assert_envelope(probe.get(API_PREFIX + "/_probe/crash", headers=auth_headers), 500, "internal_error")
    assert "secret internal detail" not in str(error)


@pytest.mark.parametrize(
    "kwargs, code",
    [
        ({}, "missing_body"),
        ({"data": "{not json", "content_type": "application/json"}, "invalid_json"),
        ({"data": b'{"name": "\xff"}', "content_type": "application/json"}, "invalid_json"),
        ({"data": "[" * 100_000 + "]" * 100_000, "content_type": "application/json"}, "invalid_json"),
        ({"data": "null", "content_type": "application/json"}, "invalid_body"),
        ({"data": "name=x", "content_type": "application/x-www-form-urlencoded"}, "unsupported_media_type"),
        ({"json": ["a", "list"]}, "invalid_body"),
        ({"json": {"count": "many"}}, "validation_error"),
    ],
)
def test_bad_bodies_are_400_envelopes(probe, auth_headers, kwargs, code):
    assert_envelope(probe.post(API_PREFIX + "/_probe/echo", headers=auth_headers, **kwargs), 400, code)


def test_field_errors_name_each_field(probe, auth_headers):
    error = assert_envelope(
        probe.post(API_PREFIX + "/_probe/echo", headers=auth_headers, json={"count": "many", "extra": 1}), 400
    )
    assert set(error["details"]["fields"]) == {"name", "count", "extra"}


def test_a_good_body_passes_through(probe, auth_headers):
    response = probe.post(API_PREFIX + "/_probe/echo", headers=auth_headers, json={"name": "x"})
    assert response.status_code == 200 and response.get_json() == {"name": "x", "count": 1}


def chunked(headers):
    """The request a WSGI server such as gunicorn hands over for a body sent in chunks: no
    length, and a stream the server ends itself."""
    return {
        "headers": {**headers, "Transfer-Encoding": "chunked"},
        "environ_overrides": {"wsgi.input_terminated": True},
    }


class CountingStream(io.BytesIO):
    """A request body that counts the bytes the panel reads from it."""

    read_bytes = 0

    def read(self, size=-1):
        data = super().read(size)
        self.read_bytes += len(data)
        return data

    def readinto(self, buffer):
        size = super().readinto(buffer)
        self.read_bytes += size
        return size


def big_echo_body(size):
    return json.dumps({"name": "x" * size}).encode()


def test_a_json_body_over_the_limit_is_413_unread(probe, auth_headers):
    body = CountingStream(big_echo_body(20 * 1024 * 1024))
    response = probe.post(
        API_PREFIX + "/_probe/echo",
        headers=auth_headers,
        input_stream=body,
        content_type="application/json",
        content_length=len(body.getvalue()),
    )
    error = assert_envelope(response, 413, "payload_too_large")
    assert error["details"] == {"limit_bytes": MAX_JSON_BODY} and "1 MiB" in error["message"]
    assert body.read_bytes == 0 and len(response.get_data()) < 1000


def test_a_chunked_json_body_is_read_no_further_than_the_limit(probe, auth_headers):
    body = CountingStream(big_echo_body(20 * 1024 * 1024))
    response = probe.post(
        API_PREFIX + "/_probe/echo", input_stream=body, content_type="application/json", **chunked(auth_headers)
    )
    assert_envelope(response, 413, "payload_too_large")
    assert body.read_bytes == MAX_JSON_BODY + 1


def test_a_json_body_at_the_limit_is_taken(probe, auth_headers):
    data = big_echo_body(MAX_JSON_BODY - len(big_echo_body(0)))
    assert len(data) == MAX_JSON_BODY
    for extra in ({"headers": auth_headers}, chunked(auth_headers)):
        response = probe.post(
            API_PREFIX + "/_probe/echo", input_stream=io.BytesIO(data), content_type="application/json", **extra
        )
        assert response.status_code == 200 and len(response.get_json()["name"]) == len(data) - 12


FORM = "application/x-www-form-urlencoded"


def big_form(size, csrf="x"):
    """A urlencoded form of exactly ``size`` bytes (at least 30) whose CSRF field comes last,
    so that it is only found in a body read whole."""
    end = f"&csrf_token={csrf}".encode()
    return b"note=" + b"n" * (size - len(end) - 5) + end


def sign_in(client):
    """Sign ``client`` in as a browser does; returns the session's CSRF token."""
    client.post("/login", data={"token": TOKEN, "next": "/ai/"})
    return re.search(r'name="csrf-token" content="([^"]+)"', client.get("/ai/").get_data(as_text=True)).group(1)


def test_a_big_form_from_a_token_client_is_refused_as_not_json_unread(probe, auth_headers):
    body = CountingStream(big_form(20 * 1024 * 1024))
    response = probe.post(
        API_PREFIX + "/_probe/echo",
        headers=auth_headers,
        input_stream=body,
        content_type=FORM,
        content_length=len(body.getvalue()),
    )
    assert_envelope(response, 400, "unsupported_media_type")
    assert body.read_bytes == 0


def test_a_signed_in_form_over_the_limit_is_413_before_it_is_read(probe):
    """A session's form is read for its CSRF field; one over the limit is refused unread when
    its length is told, and read no further than about the limit when it comes in chunks."""
    sign_in(probe)
    data = big_form(20 * 1024 * 1024)
    for extra, most_read in (({"content_length": len(data)}, 0), (chunked({}), MAX_JSON_BODY + 64 * 1024)):
        body = CountingStream(data)
        response = probe.post(API_PREFIX + "/_probe/echo", input_stream=body, content_type=FORM, **extra)
        error = assert_envelope(response, 413, "payload_too_large")
        assert error["details"] == {"limit_bytes": MAX_JSON_BODY} and "form body" in error["message"]
        assert body.read_bytes <= most_read


def test_a_signed_in_form_at_the_limit_passes_the_csrf_check_and_is_refused_as_not_json(probe):
    """The guard has read the form by then; the route still names the wrong media type rather
    than a missing body."""
    csrf = sign_in(probe)
    for extra in ({}, chunked({})):
        response = probe.post(
            API_PREFIX + "/_probe/echo",
            content_type=FORM,
            input_stream=io.BytesIO(big_form(MAX_JSON_BODY, csrf)),
            **extra,
        )
        assert_envelope(response, 400, "unsupported_media_type")
    wrong = probe.post(API_PREFIX + "/_probe/echo", data={"csrf_token": "wrong", "name": "x"})
    assert_envelope(wrong, 403, "csrf_failed")


@pytest.mark.parametrize(
    "body, where",
    [
        ({"domains": ["a;" * 250_000]}, ("domains", "0")),
        ({"allowlist": ["10.0.0.0/" + "9" * 500_000]}, ("allowlist", "0")),
        ({"tls": {"mode": "existing", "certificate": "/" + "$" * 500_000, "key": "/k.pem"}}, ("tls", "certificate")),
    ],
)
def test_a_refused_value_is_quoted_by_its_start_only(client, auth_headers, body, where):
    response = client.post(
        API_PREFIX + "/domains",
        headers=auth_headers,
        json={"domains": ["ai.example.com"], "target": {"kind": "ollama", "name": "local"}, **body},
    )
    error = assert_envelope(response, 400, "validation_error")
    messages = error["details"]["fields"]
    for key in where:
        messages = messages[key]
    assert len(messages) == 1 and "characters)" in messages[0], messages
    assert len(response.get_data()) < 1000
