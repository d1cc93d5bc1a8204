"""Photos the fake Telegram server has stored: an upload gets a ``file_id`` and its
``PhotoSize`` array, and a later send or edit may name the photo by that ``file_id``.

As Telegram does, a photo is answered as several sizes, smallest first: thumbnails that fit
a 90 and a 320 pixel box (when the picture is larger), then the picture as sent; each size
has its own ``file_id``, and sending a thumbnail's sends that small picture. Sizes come from
a PNG's header; anything else counts as 800x600. Uploads over 10 MB get 413.
"""

from __future__ import annotations

from typing import Any, Final

from tests.fakes.fake_telegram_wire import ApiError, bad_request

__all__ = ("PHOTO_LIMIT", "FakePhotos")

PHOTO_LIMIT: Final = 10 * 1024 * 1024
_THUMB_BOXES: Final = (90, 320)
_PNG: Final = b"\x89PNG\r\n\x1a\n"
_OTHER_SIZE: Final = (800, 600)


class FakePhotos:
    """Stored photos by ``file_id``; ``uploads`` counts the uploaded files."""

    def __init__(self) -> None:
        self._sizes: dict[str, list[dict[str, Any]]] = {}  # file_id -> sizes up to it
        self._next = 1
        self.uploads = 0

    def take(self, raw: str, files: dict[str, bytes]) -> tuple[bytes | str, list[dict[str, Any]]]:
        """The photo a request names (``attach://<part>``, a bare upload in the ``photo``
        part, a known ``file_id`` or a URL) as sent, and its ``PhotoSize`` array."""
        if raw.startswith("attach://"):
            data = files.get(raw.removeprefix("attach://"))
        else:
            data = files.get("photo")
        if data is not None:
            if len(data) > PHOTO_LIMIT:
                raise ApiError(413, "Request Entity Too Large")
            self.uploads += 1
            return data, self._store(*_dimensions(data), len(data))
        if raw in self._sizes:
            return raw, list(self._sizes[raw])
        if raw.startswith(("http://", "https://")):
            return raw, self._store(*_OTHER_SIZE, 0)
        if raw and not raw.startswith("attach://"):
            raise bad_request("wrong file identifier/HTTP URL specified")
        raise bad_request("there is no photo in the request")

    def _store(self, width: int, height: int, size: int) -> list[dict[str, Any]]:
        base = f"fake-photo-{self._next}"
        self._next += 1
        longest = max(width, height)
        sizes: list[dict[str, Any]] = []
        for box in _THUMB_BOXES:
            if longest > box:
                scale = box / longest
                w, h = max(1, round(width * scale)), max(1, round(height * scale))
                sizes.append(_size(f"{base}-{box}", w, h, size * w * h // (width * height)))
        sizes.append(_size(base, width, height, size))
        for i, photo in enumerate(sizes):
            self._sizes[photo["file_id"]] = sizes[: i + 1]
        return sizes


def _size(file_id: str, width: int, height: int, size: int) -> dict[str, Any]:
    return {
        "file_id": file_id,
        "file_unique_id": f"u{file_id}",
        "width": width,
        "height": height,
        "file_size": size,
    }


def _dimensions(data: bytes) -> tuple[int, int]:
    """Width and height of a PNG (from its IHDR chunk); 800x600 for anything else."""
    if data[:8] == _PNG and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    return _OTHER_SIZE
