"""One catalog for every UI string, in English and Simplified Chinese."""

import re
from pathlib import Path

import pytest

from open1panel_ai import i18n
from tests.conftest import TOKEN

PACKAGE = Path(i18n.__file__).parent
TEMPLATE_KEY = re.compile(r"""_\(\s*["']([^"']+)["']""")
SCRIPT_KEY = re.compile(r"""\bt\(\s*["']([^"']+)["']""")


def used_keys():
    keys = set()
    for template in PACKAGE.rglob("*.html"):
        keys |= set(TEMPLATE_KEY.findall(template.read_text()))
    for script in (PACKAGE / "static").glob("*.js"):
        keys |= set(SCRIPT_KEY.findall(script.read_text()))
    return keys


def test_both_languages_have_the_same_keys():
    english, chinese = set(i18n.catalog("en")), set(i18n.catalog("zh-CN"))
    # Chinese has one plural form: it may leave out the ".one" of a key that has ".other".
    singular_only_in_english = {
        key for key in english - chinese if key.endswith(".one") and key[:-4] + ".other" in chinese
    }
    assert english - singular_only_in_english == chinese


def test_every_string_the_pages_use_is_in_the_catalog():
    keys = used_keys()
    assert len(keys) > 20
    english = i18n.catalog("en")
    # A key ending in "." is the start of keys a template completes (plugins.state. ~ state).
    missing = {
        key
        for key in keys
        if key not in english
        and key + ".other" not in english
        and not (key.endswith(".") and any(k.startswith(key) for k in english))
    }
    assert missing == set()


def test_chinese_strings_are_translated_not_copied():
    english, chinese = i18n.catalog("en"), i18n.catalog("zh-CN")
    names = {"brand", "provider.kind.ollama", "provider.kind.mcp", "provider.kind.gpu"}  # proper names
    same = [k for k in english if english[k] == chinese.get(k) and k not in names]
    assert same == []


def test_placeholders_match_between_languages():
    english, chinese = i18n.catalog("en"), i18n.catalog("zh-CN")
    for key in english.keys() & chinese.keys():
        assert set(re.findall(r"{(\w+)}", english[key])) == set(re.findall(r"{(\w+)}", chinese[key])), key


@pytest.mark.parametrize(
    "cookie, header, expected",
    [
        (None, None, "en"),
        (None, "zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"),
        (None, "en-US,en;q=0.9,zh;q=0.8", "en"),
        (None, "fr;q=1.0, zh-Hans;q=0.5", "zh-CN"),
        (None, "zh-TW", "en"),
        ("zh-CN", "en", "zh-CN"),
        ("klingon", "zh", "zh-CN"),
    ],
)
def test_the_language_comes_from_the_switch_then_the_browser(cookie, header, expected):
    assert i18n.negotiate(cookie, header) == expected


def test_pages_render_in_the_browsers_language_and_the_switch_sticks(client):
    client.post("/login", data={"token": TOKEN})
    chinese = client.get("/ai/", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert '<html lang="zh-CN">' in chinese and "GPU 监控" in chinese and "插件" in chinese
    switched = client.get("/ai/?lang=en", headers={"Accept-Language": "zh-CN"})
    assert "GPU monitoring" in switched.get_data(as_text=True)
    later = client.get("/plugins", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert '<html lang="en">' in later  # the cookie set by the switch wins over the browser


# -- messages the server composes ----------------------------------------------------------

MESSAGE_KEY = re.compile(r"""\bMessage\(\s*(f?)["']([^"']+)["']""")
#: A message a person reads, written as a plain string where a Message belongs: an API error,
#: a provider's reason or a task's error.
PLAIN_MESSAGE = re.compile(
    r"""\b(?:errors\.(?!envelope\b)\w+|ApiError|BadRequest|NotFound|Conflict|UpstreamError|UpstreamUnavailable|"""
    r"""InsufficientStorage|PayloadTooLarge|Forbidden|ProviderUnavailable|TaskError|TaskInterrupted)"""
    r"""\(\s*f?["']"""
)


def message_keys():
    """Every key given to Message(...) in the package; an f-string key as a pattern."""
    keys = []
    for source in PACKAGE.rglob("*.py"):
        for is_format, key in MESSAGE_KEY.findall(source.read_text()):
            keys.append(
                (
                    source.relative_to(PACKAGE),
                    re.compile(re.sub(r"\\{[^}]*\\}", r"[\\w.-]+", re.escape(key))) if is_format else key,
                )
            )
    return keys


def test_every_message_the_server_composes_is_in_both_languages():
    keys = message_keys()
    assert len(keys) > 30
    for language in i18n.LANGUAGES:
        strings = i18n.catalog(language)
        for source, key in keys:
            if isinstance(key, re.Pattern):
                assert any(key.fullmatch(k) for k in strings), (language, source, key.pattern)
            else:
                assert key in strings or f"{key}.other" in strings, (language, source, key)


def test_no_error_or_reason_is_written_as_plain_english():
    plain = []
    for source in PACKAGE.rglob("*.py"):
        code = source.read_text()
        plain += [
            f"{source.relative_to(PACKAGE)}:{code.count(chr(10), 0, match.start()) + 1}"
            for match in PLAIN_MESSAGE.finditer(code)
        ]
    assert plain == []


def test_every_message_renders_in_both_languages():
    """Each server message fills in, in each language, from the values its English text takes."""
    for key, english in i18n.catalog("en").items():
        values = {name: "x" for name in re.findall(r"{(\w+)}", english)}
        for language in i18n.LANGUAGES:
            assert i18n.translate(key, language, **values).strip(), (language, key)


def test_a_message_is_english_text_that_renders_again_in_chinese():
    message = i18n.Message("task.error.not_retryable", status="running")
    assert message == "Only a failed, cancelled or interrupted task can be run again; this one is running."
    assert message.render("zh-CN") == "只能重新运行失败、已取消或已中断的任务；此任务的状态为「running」。"
    assert message.public() == {"key": "task.error.not_retryable", "params": {"status": "running"}}


def test_plural_forms_follow_the_count():
    assert i18n.translate("ai.tasks.seconds_left", "en", count=1) == "1 second left"
    assert i18n.translate("ai.tasks.seconds_left", "en", count=3) == "3 seconds left"
    assert i18n.translate("ai.tasks.seconds_left", "zh-CN", count=1) == "剩余 1 秒"


def test_api_errors_and_field_messages_come_in_the_readers_language(api):
    chinese = {"Accept-Language": "zh-CN"}
    status, body = api("post", "/ollama/pulls", json={"name": 7}, headers=chinese)
    assert status == 400 and body["error"]["code"] == "validation_error"
    assert body["error"]["message"] == "请检查这些字段：name。"
    assert body["error"]["details"]["fields"]["name"] == ["不是有效的字符串。"]
    status, body = api("post", "/ollama/pulls", json={})
    assert body["error"]["message"] == "Check these fields: name."
    assert body["error"]["details"]["fields"]["name"] == ["Missing data for required field."]
    status, body = api("get", "/no-such-route", headers=chinese)
    assert status == 404 and body["error"]["message"].startswith("没有这个 API 路由")
    status, body = api("post", "/tasks/0123456789abcdef0123456789abcdef/retry", headers=chinese)
    assert status == 404 and "没有任务" in body["error"]["message"]
