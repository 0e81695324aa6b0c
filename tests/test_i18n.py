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
    assert set(i18n.catalog("en")) == set(i18n.catalog("zh-CN"))


def test_every_string_the_pages_use_is_in_the_catalog():
    keys = used_keys()
    assert len(keys) > 20
    english = i18n.catalog("en")
    # A key ending in "." is the start of keys a template completes (plugins.state. ~ state).
    missing = {key for key in keys if key not in english
               and not (key.endswith(".") and any(k.startswith(key) for k in english))}
    assert missing == set()


def test_chinese_strings_are_translated_not_copied():
    english, chinese = i18n.catalog("en"), i18n.catalog("zh-CN")
    same = [k for k in english if english[k] == chinese[k] and k != "brand"]
    assert same == []


def test_placeholders_match_between_languages():
    english, chinese = i18n.catalog("en"), i18n.catalog("zh-CN")
    for key in english:
        assert set(re.findall(r"{(\w+)}", english[key])) == set(re.findall(r"{(\w+)}", chinese[key])), key


@pytest.mark.parametrize("cookie, header, expected", [
    (None, None, "en"),
    (None, "zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"),
    (None, "en-US,en;q=0.9,zh;q=0.8", "en"),
    (None, "fr;q=1.0, zh-Hans;q=0.5", "zh-CN"),
    (None, "zh-TW", "en"),
    ("zh-CN", "en", "zh-CN"),
    ("klingon", "zh", "zh-CN"),
])
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
