"""Long texts are cut where Telegram takes them, and no part breaks the HTML."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from utils.text import escape, split_html

LIMIT = 4096  # TELEGRAM.md: a message's text, in UTF-16 code units


def units(text: str) -> int:
    """Telegram's length: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


class _Balance(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: object) -> None:
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack, f"</{tag}> closes nothing"
        assert self.stack.pop() == tag


def balanced(part: str) -> bool:
    parser = _Balance()
    parser.feed(part)
    parser.close()
    return not parser.stack


def test_a_short_text_is_one_part() -> None:
    assert split_html("<b>hi</b>") == ["<b>hi</b>"]


def test_a_long_table_is_cut_on_lines_with_tags_closed_and_reopened() -> None:
    rows = "\n".join(f"ASSET{i:04d}  {i * 1.5:>12.2f}" for i in range(600))
    text = "<b>Spot</b>\n<pre>" + rows + "</pre>\nTotal"
    parts = split_html(text)
    assert len(parts) > 1
    for part in parts:
        assert units(part) <= LIMIT
        assert balanced(part), part[:80]
    # nothing lost, nothing repeated: the text without the added tags is the original's
    strip = re.compile(r"</?pre>")
    assert strip.sub("", "".join(parts)) == strip.sub("", text)


def test_a_line_longer_than_the_limit_is_cut_outside_entities() -> None:
    text = escape("<&>" * 3000)
    parts = split_html(text)
    assert len(parts) > 1
    assert all(units(p) <= LIMIT for p in parts)
    assert all(re.search(r"&[a-z]*$", p) is None for p in parts)  # no entity cut in two
    assert "".join(parts) == text


@pytest.mark.parametrize("emoji", ["🚀", "𝄞"])
def test_length_counts_utf16_units_as_telegram_does(emoji: str) -> None:
    text = emoji * 3000  # 6000 UTF-16 units in 3000 characters
    parts = split_html(text)
    assert len(parts) == 2
    assert all(units(p) <= LIMIT for p in parts)
