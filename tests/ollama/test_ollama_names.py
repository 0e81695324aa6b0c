"""Model names and server addresses are read exactly as Ollama reads them."""

import pytest

from open1panel_ai.ollama import address, names


@pytest.mark.parametrize(
    "text, short",
    [
        ("llama3.2", "llama3.2:latest"),
        ("ollama run llama3.2:1b", "llama3.2:1b"),
        ("  ollama pull qwen2.5-coder:7b ", "qwen2.5-coder:7b"),
        ("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M"),
        ("library/mistral", "mistral:latest"),
        ("registry.ollama.ai/library/mistral:7b", "mistral:7b"),
        ("someone/model", "someone/model:latest"),
    ],
)
def test_names_people_paste_become_ollamas_short_form(text, short):
    assert names.parse(text).short == short


@pytest.mark.parametrize("text", ["", "bad name", "-leading", "a/b/c/d", "model:", "x" * 81, "model:tag:more"])
def test_invalid_names_are_refused(text):
    with pytest.raises(names.InvalidModelName):
        names.parse(text)


@pytest.mark.parametrize(
    "text, valid",
    [
        ("llama3.2:latest", True),
        ("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", True),
        ("localhost:5000/team/model:v1", True),
        ("../../mcp/servers/abc", False),
        ("a/../b:latest", False),
        ("./x", False),
        ("llama3.2:latest\n", False),  # a regex "$" would let the line break through
        (" llama3.2", False),  # what a person pastes is cleaned; what a server lists is not
        ("ollama run llama3.2", False),
        ("", False),
        (None, False),
        (["llama3.2"], False),
    ],
)
def test_names_a_server_lists_are_valid_only_exactly_as_the_grammar_has_them(text, valid):
    assert names.is_valid(text) is valid


def test_names_compare_case_insensitively():
    assert names.parse("Llama3.2:LATEST").key == names.parse("llama3.2").key == "llama3.2:latest"
    assert names.parse("registry.ollama.ai/library/llama3.2").key == "llama3.2:latest"
    assert names.parse("hf.co/User/Repo:Q4_K_M").key == "hf.co/user/repo:q4_k_m"


@pytest.mark.parametrize(
    "value, url",
    [
        (None, "http://127.0.0.1:11434"),
        ("", "http://127.0.0.1:11434"),
        ("0.0.0.0", "http://0.0.0.0:11434"),
        ("0.0.0.0:8080", "http://0.0.0.0:8080"),
        ("example.com", "http://example.com:11434"),
        ("http://example.com", "http://example.com:80"),
        ("https://example.com", "https://example.com:443"),
        ("https://example.com:8443/ollama", "https://example.com:8443/ollama"),
        ("[::1]:1234", "http://[::1]:1234"),
        ('"127.0.0.1:9999"', "http://127.0.0.1:9999"),
        ("example.com:99999", "http://127.0.0.1:11434"),
        ("[::1%eth0]:1234", "http://[::1]:1234"),  # a zone is dropped: the panel never writes one
        ("bad;host:1234", "http://127.0.0.1:11434"),
    ],
)
def test_ollama_host_is_read_the_way_ollama_reads_it(value, url):
    assert address.from_ollama_host(value) == url


@pytest.mark.parametrize(
    "text",
    [
        "ftp://x",
        "http://user:pw@x:1",
        "http://x:1/path",
        "http://x y:1",
        "http://x:1?q=1",
        "http://x;rm -rf:1",
        "http://x:99999",
        "http://[::1%eth0]:1",
        "[::1%x]:1",
        "::1%x;}",
        "http://[::1]:0",
    ],
)
def test_stored_addresses_are_strict(text):
    with pytest.raises(address.InvalidAddress):
        address.normalise(text)


def test_stored_addresses_are_normalised():
    assert address.normalise("10.0.0.5") == "http://10.0.0.5:11434"
    assert address.normalise("HTTP://Box.LAN:11434/") == "http://box.lan:11434"
    assert address.normalise("https://[::1]") == "https://[::1]:443"
