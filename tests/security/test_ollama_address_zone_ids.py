"""Issue 11, finding 1, for Ollama endpoints: an address with an IPv6 zone, or anything else
that is no plain address, is refused; and no value, not even one stored by an earlier version,
makes ``GET /ollama/endpoints`` or ``GET /ollama/running`` answer 500.

Python's ``ipaddress`` takes ``::1%<anything>``, and httpx fails on what it cannot encode (a
non-ASCII zone, a NUL, a 300-character zone) with errors that are no network error, which
became 500s. Addresses are now parsed with zones refused and rebuilt from the parsed bytes,
and a stored address that does not parse any more is shown as unusable, with the reason.
"""

from __future__ import annotations

import sqlite3

import pytest

from open1panel_ai.ollama import address

#: Endpoint addresses an earlier version took; none is an address the panel uses now.
HOSTILE = [
    "http://[::1%eth0]:11434",
    "http://[::1%25x]:11434",
    "http://[::1%x;}server{listen 80;}]:11434",
    "http://[::1%x y]:11434",
    "http://[::1%\n}]:11434",
    "http://[::1%{]:11434",
    "http://[::1%ü]:11434",
    "http://[::1%\x00]:11434",
    "http://[::1%" + "a" * 300 + "]:11434",
    "[::1%x]:11434",
    "::1%x",
    "http://[fe80::1%lo]:11434",
    "http://127.0.0.1%x:11434",
    "http://box\n.lan:11434",
    "http://bøx.lan:11434",
    "http://x:0",
    "http://[::1]:99999",
    "http://[::1%]:11434",
]


@pytest.mark.parametrize("url", HOSTILE)
def test_an_address_that_is_not_plain_is_refused(url):
    with pytest.raises(address.InvalidAddress):
        address.normalise(url)


def test_what_is_kept_is_rebuilt_from_the_parsed_address():
    assert address.normalise("http://[0:0:0:0:0:0:0:1]:11434") == "http://[::1]:11434"
    assert address.normalise("[2001:DB8:0::1]:8080") == "http://[2001:db8::1]:8080"
    # OLLAMA_HOST, read the way Ollama reads it: a zone is dropped, the address kept.
    assert address.from_ollama_host("[::1%x;}server{]:1234") == "http://[::1]:1234"
    assert address.from_ollama_host("bad host;{:1234") == address.DEFAULT_URL


def test_a_zoned_address_is_a_400_naming_the_url_field(api):
    for url in HOSTILE:
        status, reply = api("post", "/ollama/endpoints", json={"name": "zoned", "url": url})
        assert status == 400, (url, reply)
        assert list(reply["error"]["details"]["fields"]) == ["url"], reply
    assert [e["name"] for e in api("get", "/ollama/endpoints")[1]["endpoints"]] == ["local"]


def test_addresses_stored_by_an_earlier_version_are_unusable_never_a_500(api, data_dir):
    assert api("get", "/ollama/endpoints")[0] == 200  # the store exists
    db = sqlite3.connect(data_dir / "open1panel-ai.sqlite3")
    with db:
        db.executemany(
            "INSERT INTO ollama_endpoints (name, url, created_at) VALUES (?, ?, '')",
            [(f"old-{i}", url) for i, url in enumerate(HOSTILE)],
        )
    db.close()

    status, listed = api("get", "/ollama/endpoints")
    assert status == 200, listed
    stored = [e for e in listed["endpoints"] if e["name"].startswith("old-")]
    assert len(stored) == len(HOSTILE)
    for endpoint in stored:
        assert endpoint["reachable"] is False and endpoint["error"]["message"], endpoint

    for endpoint in stored:  # each says why: the address itself, not the network
        assert endpoint["error"]["code"] == "bad_address", endpoint

    status, running = api("get", "/ollama/running")
    assert status == 200, running
    for i in range(len(HOSTILE)):
        for path in (f"/ollama/running?endpoint=old-{i}", f"/ollama/models?endpoint=old-{i}"):
            status, reply = api("get", path)
            assert status in (409, 503) and reply["error"]["message"], (HOSTILE[i], path, reply)
    # They can still be removed.
    assert api("delete", "/ollama/endpoints/old-0")[0] == 204
