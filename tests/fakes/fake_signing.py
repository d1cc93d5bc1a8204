"""API-key, timestamp and signature checks of the fake exchange (BINANCE.md §7), written
independently of the project's signing code.

The signed payload is the raw query string followed directly by the raw body, each without
its ``signature=`` part, exactly the bytes received (still percent-encoded). HMAC keys
compare hex digests; PEM keys (Ed25519, RSA PKCS1v15-SHA256) verify the base64 signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import TYPE_CHECKING
from urllib.parse import unquote

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from tests.fakes.fake_market import ApiError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ("KeyRing", "missing_param")

PublicKey = ed25519.Ed25519PublicKey | rsa.RSAPublicKey
_MAX_RECV_WINDOW = 60_000


def missing_param(name: str) -> ApiError:
    return ApiError(
        400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


class KeyRing:
    """Known API keys with their HMAC secret or public key."""

    def __init__(self, keys: Mapping[str, str | bytes]) -> None:
        self._keys: dict[str, str | PublicKey] = {k: _load_key(v) for k, v in keys.items()}

    def check_key(self, api_key: str | None) -> None:
        if api_key is not None and api_key in self._keys:
            return
        if api_key is not None and (
            not api_key or not api_key.isascii() or not api_key.isprintable() or " " in api_key
        ):
            raise ApiError(401, -2014, "API-key format invalid.")
        raise ApiError(401, -2015, "Invalid API-key, IP, or permissions for action.")

    def check_signed(
        self, api_key: str, params: Mapping[str, str], raw: tuple[bytes, bytes], server_ms: int
    ) -> None:
        """Timestamp window, then signature, of a request whose key is known."""
        query, sig_q = _split_signature(raw[0])
        body, sig_b = _split_signature(raw[1])
        raw_sig = sig_q if sig_q is not None else sig_b
        if not raw_sig:
            raise missing_param("signature")
        try:
            stamp = int(params.get("timestamp", ""))
        except ValueError:
            raise missing_param("timestamp") from None
        try:
            recv = float(params.get("recvWindow") or 5000)
        except ValueError:
            raise missing_param("recvWindow") from None
        if recv > _MAX_RECV_WINDOW:
            raise ApiError(400, -1131, "recvWindow must be less than 60000")
        stamp = stamp // 1000 if stamp > 10**14 else stamp  # spot accepts microseconds
        if stamp >= server_ms + 1000:
            raise ApiError(
                400, -1021, "Timestamp for this request was 1000ms ahead of the server's time."
            )
        if server_ms - stamp > recv:
            raise ApiError(400, -1021, "Timestamp for this request is outside of the recvWindow.")
        if not _verify(self._keys[api_key], query + body, unquote(raw_sig.decode("latin-1"))):
            raise ApiError(400, -1022, "Signature for this request is not valid.")


def _split_signature(raw: bytes) -> tuple[bytes, bytes | None]:
    """The raw string without its ``signature=`` part, and that part's raw value."""
    if b"signature=" not in raw:
        return raw, None
    kept, sig = [], None
    for part in raw.split(b"&"):
        if part.startswith(b"signature="):
            sig = part[len(b"signature=") :]
        else:
            kept.append(part)
    return b"&".join(kept), sig


def _load_key(value: str | bytes) -> str | PublicKey:
    if isinstance(value, str):
        return value
    key = serialization.load_pem_public_key(value)
    if not isinstance(key, ed25519.Ed25519PublicKey | rsa.RSAPublicKey):
        raise TypeError(f"only Ed25519 and RSA public keys are supported, not {type(key)}")
    return key


def _verify(key: str | PublicKey, payload: bytes, signature: str) -> bool:
    if isinstance(key, str):
        expected = hmac.new(key.encode(), payload, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, signature.lower())
    try:
        raw = base64.b64decode(signature, validate=True)
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(raw, payload)
        else:
            key.verify(raw, payload, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True
