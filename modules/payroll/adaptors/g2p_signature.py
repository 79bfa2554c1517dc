"""G2P Connect message signatures: the ``signature`` member of every message envelope.

What the specification says (G2P Connect disburse API 1.0.0, schema ``MsgSignature``; the
DCI social protection standards that succeed G2P Connect keep the same schema): a message is
``{"signature": ..., "header": {...}, "message": {...}}`` and ``signature`` is a string, the
"Signature of {header}+{message} body verified using sender's signing public key", shaped like

    Signature: namespace="g2p", kidId="{sender_id}|{unique_key_id}|{algorithm}",
    algorithm="ed25519", created="1606970629", expires="1607030629",
    headers="(created) (expires) digest", signature="Base64(signing content)"

That is the Beckn protocol's HTTP signature (BECKN-006, a profile of
draft-cavage-http-signatures-12) moved from the ``Authorization`` header into the body. The
specification does not spell out the signing content, so Beckn's is used:

    (created): {created}
    (expires): {expires}
    digest: BLAKE-512={Base64(BLAKE2b-512(content))}

(lines joined by ``\\n``, in the order ``headers`` lists them), signed with Ed25519 and
Base64-encoded. Our reading of "{header}+{message}": the content is the exact text of the
``header`` value followed by the exact text of the ``message`` value, as they stand in the
body (the signature cannot cover itself). A verifier takes that text from the body it
received, so neither side has to reproduce the other's JSON serialisation, and whatever it then
reads from the message is what the signature covered.

Errors carry the specification's acknowledgement codes ``err.signature.missing`` and
``err.signature.invalid``.

Not this: a detached JWS in a ``Signature`` HTTP header, which some G2P Connect
implementations (OpenG2P's) use instead; the specification itself shows only the form above.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALGORITHM = "ed25519"
COVERED = ("(created)", "(expires)", "digest")
MISSING = "err.signature.missing"
INVALID = "err.signature.invalid"

_PARAMETER = re.compile(r'([A-Za-z]+)="([^"]*)"')
_SPACE = re.compile(r"[ \t\n\r]*")
_SEPARATORS = re.compile(r"[\s,]*")


class SignatureError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Verified:
    header: dict[str, Any]
    message: Any


def private_key(text: str) -> Ed25519PrivateKey:
    """An Ed25519 private key from PKCS#8 PEM, or Base64 of the 32-byte seed (or of the 64
    bytes seed + public key that libsodium-style tools print)."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(text.encode(), password=None)
        except (ValueError, TypeError) as exc:
            raise ValueError("not a readable unencrypted PEM private key") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the PEM key is not an Ed25519 key")
        return key
    raw = _base64(text)
    if len(raw) not in (32, 64):
        raise ValueError("a Base64 Ed25519 private key is 32 (or 64) bytes")
    key = Ed25519PrivateKey.from_private_bytes(raw[:32])
    if len(raw) == 64 and key.public_key().public_bytes_raw() != raw[32:]:
        raise ValueError("the last 32 bytes are not the public key of the first 32")
    return key


def public_key(text: str) -> Ed25519PublicKey:
    """An Ed25519 public key from SubjectPublicKeyInfo PEM or Base64 of its 32 bytes."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(text.encode())
        except (ValueError, TypeError) as exc:
            raise ValueError("not a readable PEM public key") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("the PEM key is not an Ed25519 key")
        return key
    raw = _base64(text)
    if len(raw) != 32:
        raise ValueError("a Base64 Ed25519 public key is 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def _base64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError as exc:  # binascii.Error is a ValueError
        raise ValueError("neither PEM nor Base64") from exc


def digest(content: bytes) -> str:
    return "BLAKE-512=" + base64.b64encode(hashlib.blake2b(content, digest_size=64).digest()).decode()


def signing_string(covered: tuple[str, ...], created: int, expires: int, content_digest: str) -> bytes:
    values = {"(created)": str(created), "(expires)": str(expires), "digest": content_digest}
    return "\n".join(f"{name}: {values[name]}" for name in covered).encode()


def sign(header: dict[str, Any], message: Any, *, key: Ed25519PrivateKey, sender_id: str, key_id: str,
         ttl: int, namespace: str = "g2p", now: float | None = None) -> bytes:
    """The whole request body: ``{"signature": ..., "header": ..., "message": ...}``, with the
    signature over the header and message text exactly as written here."""
    for name, value in (("sender_id", sender_id), ("key_id", key_id), ("namespace", namespace)):
        if not value or set(value) & set('|",\\'):
            raise ValueError(f"{name} must be non-empty, without | \" , or \\")
    header_text = json.dumps(header, separators=(",", ":"))
    message_text = json.dumps(message, separators=(",", ":"))
    created = int(time.time() if now is None else now)
    expires = created + int(ttl)
    value = key.sign(signing_string(COVERED, created, expires, digest((header_text + message_text).encode())))
    signature = (f'Signature: namespace="{namespace}", kidId="{sender_id}|{key_id}|{ALGORITHM}", '
                 f'algorithm="{ALGORITHM}", created="{created}", expires="{expires}", '
                 f'headers="{" ".join(COVERED)}", signature="{base64.b64encode(value).decode()}"')
    return ('{"signature":' + json.dumps(signature) + ',"header":' + header_text
            + ',"message":' + message_text + "}").encode()


def envelope_parts(body: bytes) -> dict[str, str]:
    """The text of each top-level member's value, exactly as it stands in the body.

    Raises ``ValueError`` for anything but one JSON object, and for a member given twice
    (a parser keeping the last copy would read what the signature did not cover)."""
    text = body.decode("utf-8")
    decoder = json.JSONDecoder()
    parts: dict[str, str] = {}
    at = _skip(text, 0)
    if text[at:at + 1] != "{":
        raise ValueError("the body is not a JSON object")
    at = _skip(text, at + 1)
    while text[at:at + 1] != "}":
        if parts:
            if text[at:at + 1] != ",":
                raise ValueError(f"expected , at {at}")
            at = _skip(text, at + 1)
        if text[at:at + 1] != '"':
            raise ValueError(f"expected a member name at {at}")
        name, at = decoder.raw_decode(text, at)
        at = _skip(text, at)
        if text[at:at + 1] != ":":
            raise ValueError(f"expected : at {at}")
        start = _skip(text, at + 1)
        _, at = decoder.raw_decode(text, start)
        if name in parts:
            raise ValueError(f"the member {name!r} is given twice")
        parts[name] = text[start:at]
        at = _skip(text, at)
    if text[_skip(text, at + 1):]:
        raise ValueError("text after the JSON object")
    return parts


def _skip(text: str, at: int, pattern: re.Pattern[str] = _SPACE) -> int:
    found = pattern.match(text, at)
    return found.end() if found else at


def parameters(signature: str) -> dict[str, str]:
    """``name="value"`` pairs of a signature string; ``Signature:`` in front is optional."""
    text = signature.strip()
    for prefix in ("Signature:", "Signature "):
        if text.startswith(prefix):
            text = text[len(prefix):]
            break
    found: dict[str, str] = {}
    at = _skip(text, 0, _SEPARATORS)
    while at < len(text):
        match = _PARAMETER.match(text, at)
        if not match:
            raise ValueError(f"unreadable signature parameters at {text[at:at + 20]!r}")
        if match.group(1) in found:
            raise ValueError(f"the parameter {match.group(1)} is given twice")
        found[match.group(1)] = match.group(2)
        at = _skip(text, match.end(), _SEPARATORS)
    return found


def verify(body: bytes, *, key: Ed25519PublicKey, sender_id: str, key_id: str, receiver_id: str = "",
           skew: int = 30, now: float | None = None) -> Verified:
    """Check a received message's signature; return its header and message, read from the very
    text the signature covers. ``sender_id`` and ``key_id`` are who must have signed it (the
    ``kidId``); ``receiver_id``, when given, is who the header must address (when it names one)."""
    try:
        parts = envelope_parts(body)
        header = json.loads(parts["header"])
        message = json.loads(parts["message"]) if "message" in parts else None
        signature = json.loads(parts.get("signature", '""'))
    except (ValueError, KeyError) as exc:
        raise SignatureError(INVALID, f"not a G2P Connect envelope ({exc})") from exc
    if not isinstance(header, dict):
        raise SignatureError(INVALID, "the header is not an object")
    if not signature or not isinstance(signature, str):
        raise SignatureError(MISSING, "the message is not signed")
    try:
        params = parameters(signature)
        kid_sender, kid_key, kid_algorithm = params.get("kidId", params.get("keyId", "")).split("|")
        covered = tuple(params.get("headers", "").split())
        created, expires = int(params["created"]), int(params["expires"])
        value = base64.b64decode(params["signature"], validate=True)
    except (ValueError, KeyError) as exc:  # binascii.Error is a ValueError
        raise SignatureError(INVALID, f"unreadable signature ({exc})") from exc
    if kid_algorithm.lower() != ALGORITHM or params.get("algorithm", ALGORITHM).lower() != ALGORITHM:
        raise SignatureError(INVALID, f"unsupported algorithm {params.get('algorithm') or kid_algorithm!r}")
    if kid_sender != sender_id:
        raise SignatureError(INVALID, f"signed by {kid_sender!r}, not by {sender_id!r}")
    if kid_key != key_id:
        raise SignatureError(INVALID, f"signed with key {kid_key!r}, not with {key_id!r}")
    if sorted(covered) != sorted(COVERED):
        raise SignatureError(INVALID, f"the signature must cover {' '.join(COVERED)}, not {' '.join(covered)!r}")
    moment = time.time() if now is None else now
    if created > moment + skew:
        raise SignatureError(INVALID, f"created {int(created - moment)} s in the future")
    if expires <= created:
        raise SignatureError(INVALID, "the signature expires before it was created")
    if expires < moment - skew:
        raise SignatureError(INVALID, f"the signature expired {int(moment - expires)} s ago")
    content = (parts["header"] + parts.get("message", "")).encode()
    try:
        key.verify(value, signing_string(covered, created, expires, digest(content)))
    except InvalidSignature as exc:
        raise SignatureError(INVALID, "the signature does not match the message (altered, or another key)") from exc
    if header.get("sender_id") not in (None, "", sender_id):
        raise SignatureError(INVALID, f"the header's sender_id {header.get('sender_id')!r} is not the signer")
    if receiver_id and header.get("receiver_id") not in (None, "", receiver_id):
        raise SignatureError(INVALID, f"addressed to {header.get('receiver_id')!r}, not to {receiver_id!r}")
    return Verified(header, message)
