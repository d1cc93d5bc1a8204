"""Telegram's HTML parse mode, as the Bot API (tdlib's ``parse_html``) applies it: the tags of
TELEGRAM.md §4, ``&lt; &gt; &amp; &quot;`` and numeric references (other ``&...;`` stay
text), and tdlib's error texts with UTF-8 byte offsets. Returns the plain text with its
entities; an unknown tag, an unbalanced tag or a malformed attribute raises ``HtmlError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

__all__ = ("HtmlError", "parse_html", "utf16_len")

_TAG_ENTITIES: Final = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
    "tg-time": "",  # accepted; no entity here
}
_NAMED: Final = {b"lt": "<", b"gt": ">", b"amp": "&", b"quot": '"'}
_SPACE: Final = frozenset(b" \t\r\n\f\v")
_NAME_TOKEN: Final = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")
_LT, _GT, _SLASH, _AMP, _EQ = 0x3C, 0x3E, 0x2F, 0x26, 0x3D


class HtmlError(ValueError):
    """Bad markup; the message is tdlib's, e.g. 'Unsupported start tag "x" at byte offset 3'."""


@dataclass(slots=True)
class _Open:
    tag: str
    argument: str
    offset: int  # UTF-16 units


def parse_html(html: str) -> tuple[str, list[dict[str, Any]]]:
    """Plain text and entities (UTF-16 offsets) of ``html``; HtmlError on bad markup.

    Byte offsets in errors are UTF-8 offsets into the source, as Telegram reports them.
    """
    return _HtmlParser(html.encode()).run()


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram's entity offsets and our limits."""
    return len(text.encode("utf-16-le")) // 2


class _HtmlParser:
    def __init__(self, raw: bytes) -> None:
        self.raw, self.i = raw, 0
        self.out: list[str] = []
        self.utf16 = 0
        self.open: list[_Open] = []
        self.entities: list[dict[str, Any]] = []

    def at(self, i: int) -> int:
        return self.raw[i] if i < len(self.raw) else 0  # tdlib reads a NUL-terminated string

    def emit(self, text: str) -> None:
        self.out.append(text)
        self.utf16 += utf16_len(text)

    def run(self) -> tuple[str, list[dict[str, Any]]]:
        raw = self.raw
        while self.i < len(raw):
            c = raw[self.i]
            if c == _AMP and (decoded := _decode_entity(raw, self.i)) is not None:
                self.emit(decoded[0])
                self.i = decoded[1]
            elif c != _LT:
                end = self.i + 1
                while end < len(raw) and raw[end] not in (_LT, _AMP):
                    end += 1
                self.emit(raw[self.i : end].decode("utf-8", "replace"))
                self.i = end
            elif self.at(self.i + 1) == _SLASH:
                self.end_tag()
            else:
                self.start_tag()
        if self.open:
            raise HtmlError(
                f'Can\'t find end tag corresponding to start tag "{self.open[-1].tag}"'
            )
        self.entities.sort(key=lambda e: (e["offset"], -e["length"]))
        return "".join(self.out), self.entities

    def start_tag(self) -> None:
        begin = self.i
        self.i += 1
        while self.at(self.i) not in _SPACE and self.at(self.i) not in (_GT, 0):
            self.i += 1
        if self.at(self.i) == 0:
            raise HtmlError(f"Unclosed start tag at byte offset {begin}")
        tag = self.raw[begin + 1 : self.i].decode("utf-8", "replace").lower()
        if tag not in _TAG_ENTITIES:
            raise HtmlError(f'Unsupported start tag "{tag}" at byte offset {begin}')
        argument = ""
        while self.at(self.i) != _GT:
            while self.at(self.i) in _SPACE:
                self.i += 1
            if self.at(self.i) == _GT:
                break
            if self.at(self.i) == 0:
                raise HtmlError(f'Unclosed start tag "{tag}" at byte offset {begin}')
            name, value = self.attribute(tag, begin)
            argument = _argument(tag, name, value, argument)
        self.i += 1
        if tag == "span" and argument != "spoiler":
            raise HtmlError(f'Tag "span" must have class "tg-spoiler" at byte offset {begin}')
        self.open.append(_Open(tag, argument, self.utf16))

    def attribute(self, tag: str, begin: int) -> tuple[str, str | None]:
        start = self.i
        while self.at(self.i) not in _SPACE and self.at(self.i) not in (_EQ, _GT, 0):
            self.i += 1
        name = self.raw[start : self.i].decode("utf-8", "replace").lower()
        if not name:
            raise HtmlError(f'Empty attribute name in the tag "{tag}" at byte offset {begin}')
        while self.at(self.i) in _SPACE:
            self.i += 1
        if self.at(self.i) != _EQ:
            return name, None  # a bare attribute, e.g. <blockquote expandable>
        self.i += 1
        while self.at(self.i) in _SPACE:
            self.i += 1
        if self.at(self.i) == 0:
            raise HtmlError(f'Unclosed start tag "{tag}" at byte offset {begin}')
        quote = self.at(self.i)
        if quote not in (0x22, 0x27):
            return name, self.name_token()
        return name, self.quoted(quote, begin)

    def name_token(self) -> str:
        token = self.i
        while self.at(self.i) in _NAME_TOKEN:
            self.i += 1
        if self.at(self.i) not in _SPACE and self.at(self.i) != _GT:
            raise HtmlError(f"Unexpected end of name token at byte offset {token}")
        return self.raw[token : self.i].decode().lower()

    def quoted(self, quote: int, begin: int) -> str:
        self.i += 1
        value: list[str] = []
        while self.at(self.i) not in (quote, 0):
            if self.at(self.i) == _AMP and (decoded := _decode_entity(self.raw, self.i)):
                value.append(decoded[0])
                self.i = decoded[1]
                continue
            end = self.i + 1
            while self.at(end) not in (quote, _AMP, 0):
                end += 1
            value.append(self.raw[self.i : end].decode("utf-8", "replace"))
            self.i = end
        self.i += self.at(self.i) == quote
        if self.at(self.i) == 0:
            raise HtmlError(f"Unclosed start tag at byte offset {begin}")
        return "".join(value)

    def end_tag(self) -> None:
        begin = self.i
        if not self.open:
            raise HtmlError(f"Unexpected end tag at byte offset {begin}")
        self.i += 2
        while self.at(self.i) not in _SPACE and self.at(self.i) not in (_GT, 0):
            self.i += 1
        name = self.raw[begin + 2 : self.i].decode("utf-8", "replace").lower()
        while self.at(self.i) in _SPACE:
            self.i += 1
        if self.at(self.i) != _GT:
            raise HtmlError(f"Unclosed end tag at byte offset {begin}")
        self.i += 1
        opened = self.open[-1]
        if name and name != opened.tag:
            raise HtmlError(
                f'Unmatched end tag at byte offset {begin}, expected "</{opened.tag}>",'
                f' found "</{name}>"'
            )
        self.open.pop()
        self.close_entity(opened)

    def close_entity(self, opened: _Open) -> None:
        length = self.utf16 - opened.offset
        kind = _TAG_ENTITIES[opened.tag]
        if (
            length == 0
            or not kind
            or (kind in ("text_link", "custom_emoji") and not opened.argument)
        ):
            return
        if kind == "code" and opened.argument and self.open and self.open[-1].tag == "pre":
            self.open[-1].argument = opened.argument  # <pre><code class="language-x">
            return
        entity: dict[str, Any] = {"type": kind, "offset": opened.offset, "length": length}
        if kind == "text_link":
            entity["url"] = opened.argument
        elif kind == "custom_emoji":
            entity["custom_emoji_id"] = opened.argument
        elif kind == "pre" and opened.argument:
            entity["language"] = opened.argument
        elif kind == "blockquote" and opened.argument:
            entity["type"] = "expandable_blockquote"
        self.entities.append(entity)


def _argument(tag: str, name: str, value: str | None, current: str) -> str:
    """What tdlib keeps of an attribute: href, language, spoiler class, emoji id, expandable."""
    if value is None:
        return "1" if (tag, name) == ("blockquote", "expandable") else current
    if (tag, name) in (("a", "href"), ("tg-emoji", "emoji-id")):
        return value
    if (tag, name) == ("code", "class") and value.startswith("language-"):
        return value.removeprefix("language-")
    if (tag, name) == ("span", "class") and value.startswith("tg-"):
        return value.removeprefix("tg-")
    return current


def _decode_entity(raw: bytes, pos: int) -> tuple[str, int] | None:
    """``&lt; &gt; &amp; &quot;`` and numeric references (``;`` optional); others stay text."""
    end = pos + 1
    if raw[end : end + 1] == b"#":
        end += 1
        hexadecimal = raw[end : end + 1] == b"x"
        end += hexadecimal
        digits = b"0123456789abcdefABCDEF" if hexadecimal else b"0123456789"
        start = end
        while end < len(raw) and raw[end] in digits:
            end += 1
        code = int(raw[start:end], 16 if hexadecimal else 10) if end > start else 0
        if code == 0 or code >= 0x10FFFF or end - pos >= 10:
            return None
        if 0xD800 <= code <= 0xDFFF:
            raise HtmlError(
                "Text contains invalid Unicode characters after decoding HTML entities,"
                " check for unmatched surrogate code units"
            )
        char = chr(code)
    else:
        while end < len(raw) and chr(raw[end]).isalpha() and raw[end] < 0x80:
            end += 1
        named = _NAMED.get(raw[pos + 1 : end])
        if named is None:
            return None
        char = named
    return char, end + 1 if raw[end : end + 1] == b";" else end
