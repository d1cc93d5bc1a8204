"""Telegram HTML text: escaping values and splitting long texts at Telegram's limit.

Every value the bot did not write itself goes through ``escape`` (HTML parse mode,
TELEGRAM.md section 4). ``split_html`` cuts a text over 4,096 UTF-16 units on line ends and
closes and reopens the tags open at a cut, so no part breaks the markup. Pure: nothing here
sends or imports aiogram, so ``bot/``, ``handler/`` and ``utils/alarms/`` all import it
downward.
"""

from __future__ import annotations

import html
import re
from typing import Final

__all__ = ("TELEGRAM_TEXT_LIMIT", "escape", "split_html", "utf16_len")

#: sendMessage's limit, counted here on the raw HTML (never shorter than the parsed text).
TELEGRAM_TEXT_LIMIT: Final = 4096
_LONGEST_ENTITY: Final = 10  # &#x1F600; and the like
_TAG: Final = re.compile(r"<(/?)([a-zA-Z][\w-]*)([^>]*)>")


def escape(value: object) -> str:
    """``value`` as text safe inside HTML parse mode (``&``, ``<``, ``>`` and quotes)."""
    return html.escape(str(value), quote=True)


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, as Telegram counts it."""
    return len(text.encode("utf-16-le")) // 2


def split_html(text: str, limit: int = TELEGRAM_TEXT_LIMIT) -> list[str]:
    """Cut ``text`` into parts of at most ``limit`` UTF-16 units, on line ends where it can,
    closing the tags open at a cut and reopening them in the next part."""
    if utf16_len(text) <= limit:
        return [text]
    parts: list[str] = []
    open_tags: list[tuple[str, str]] = []  # (name, full opening tag)
    current = ""
    for line in _lines(text, limit // 2):
        reopen = "".join(tag for _, tag in open_tags)
        closing = "".join(f"</{name}>" for name, _ in reversed(open_tags))
        after = _track(open_tags.copy(), line)
        closing_after = "".join(f"</{name}>" for name, _ in reversed(after))
        if current and utf16_len(current + line + closing_after) > limit:
            parts.append(current + closing)
            current = reopen
        current += line
        open_tags = after
    if current:
        parts.append(current)
    return parts


def _lines(text: str, width: int) -> list[str]:
    """Lines with their newline; a line longer than ``width`` is cut between tags."""
    out: list[str] = []
    for whole in text.splitlines(keepends=True):
        line = whole
        while utf16_len(line) > width:
            cut = _safe_cut(line, width)
            out.append(line[:cut])
            line = line[cut:]
        out.append(line)
    return out


def _safe_cut(line: str, width: int) -> int:
    """An index at most ``width`` characters in that is not inside a tag or an entity."""
    cut = width
    lt, gt = line.rfind("<", 0, cut), line.rfind(">", 0, cut)
    if lt > gt:  # inside a tag: cut before it
        cut = lt
    amp, semi = line.rfind("&", 0, cut), line.rfind(";", 0, cut)
    if amp > semi and cut - amp < _LONGEST_ENTITY:  # inside an entity such as &amp;
        cut = amp
    return max(cut, 1)


def _track(open_tags: list[tuple[str, str]], chunk: str) -> list[tuple[str, str]]:
    """The tags still open after ``chunk``."""
    for match in _TAG.finditer(chunk):
        closing, name = match.group(1), match.group(2).lower()
        if closing:
            for i in range(len(open_tags) - 1, -1, -1):
                if open_tags[i][0] == name:
                    del open_tags[i:]
                    break
        else:
            open_tags.append((name, match.group(0)))
    return open_tags
