"""The G2P Connect message signature on its own: no database, keys made for each test."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from modules.payroll.adaptors import g2p_signature as sig

NOW = 1_800_000_000
HEADER = {"message_id": "m-1", "action": "on-disburse", "sender_id": "bank", "receiver_id": "coremis"}
MESSAGE = {"transaction_id": "T-1", "disbursements_status": [{"reference_id": "R-1", "status": "succ"}]}


def signed(key, **overrides):
    options = {"sender_id": "bank", "key_id": "k1", "ttl": 300, "now": NOW} | overrides
    return sig.sign(HEADER, MESSAGE, key=key, **options)


def check(body, key, **overrides):
    options = {"sender_id": "bank", "key_id": "k1", "receiver_id": "coremis", "now": NOW + 10} | overrides
    return sig.verify(body, key=key.public_key(), **options)


def test_round_trip_and_the_wire_format():
    key = Ed25519PrivateKey.generate()
    body = signed(key)
    verified = check(body, key)
    assert verified.header == HEADER and verified.message == MESSAGE
    signature = json.loads(body)["signature"]
    assert signature.startswith('Signature: namespace="g2p", kidId="bank|k1|ed25519", algorithm="ed25519", ')
    params = sig.parameters(signature)
    assert params["created"] == str(NOW) and params["expires"] == str(NOW + 300)
    assert params["headers"] == "(created) (expires) digest"
    # The signature is Ed25519 over Beckn's signing string with a BLAKE2b-512 digest of the
    # header text followed by the message text.
    parts = sig.envelope_parts(body)
    digest = base64.b64encode(hashlib.blake2b((parts["header"] + parts["message"]).encode()).digest())
    expected = f"(created): {NOW}\n(expires): {NOW + 300}\ndigest: BLAKE-512={digest.decode()}".encode()
    key.public_key().verify(base64.b64decode(params["signature"]), expected)


def test_the_senders_own_serialisation_and_member_order_are_kept():
    """A verifier reads the signed text from the body, whatever the sender's JSON looks like."""
    key = Ed25519PrivateKey.generate()
    header_text, message_text = json.dumps(HEADER, indent=2), json.dumps(MESSAGE, ensure_ascii=False)
    content = (header_text + message_text).encode()
    value = key.sign(sig.signing_string(sig.COVERED, NOW, NOW + 60, sig.digest(content)))
    signature = (f'Signature: namespace="dci", kidId="bank|k1|ed25519", algorithm="ed25519", created="{NOW}", '
                 f'expires="{NOW + 60}", headers="(created) (expires) digest", '
                 f'signature="{base64.b64encode(value).decode()}"')
    body = f'\n{{ "header" : {header_text},\n "message": {message_text}, "signature": {json.dumps(signature)} }}\n'
    assert check(body.encode(), key).message == MESSAGE


def test_what_verification_refuses():
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    body = signed(key)
    envelope = json.loads(body)
    altered = body.replace(b'"succ"', b'"rjct"')
    spaced = body.replace(b'"status":"succ"', b'"status": "succ"')
    cases = {
        "altered message": (altered, {}),
        "reformatted message": (spaced, {}),
        "another key": (signed(other), {}),
        "another key id": (signed(key, key_id="k2"), {}),
        "another sender": (signed(key, sender_id="mallory"), {}),
        "expired": (body, {"now": NOW + 300 + 31}),
        "created in the future": (body, {"now": NOW - 31}),
        "header names another sender": (sig.sign({**HEADER, "sender_id": "x"}, MESSAGE, key=key, sender_id="bank",
                                                 key_id="k1", ttl=300, now=NOW), {}),
        "addressed to someone else": (sig.sign({**HEADER, "receiver_id": "x"}, MESSAGE, key=key, sender_id="bank",
                                               key_id="k1", ttl=300, now=NOW), {}),
        "duplicate message member": (body[:-1] + b',"message":{}}', {}),
        "unsigned": (json.dumps({**envelope, "signature": ""}).encode(), {}),
        "no signature member": (json.dumps({"header": HEADER, "message": MESSAGE}).encode(), {}),
        "not JSON": (b"signature=1", {}),
    }
    for name, (candidate, overrides) in cases.items():
        with pytest.raises(sig.SignatureError) as refused:
            check(candidate, key, **overrides)
        expected = sig.MISSING if name in ("unsigned", "no signature member") else sig.INVALID
        assert refused.value.code == expected, name
    # within the allowed clock skew both ways
    assert check(body, key, now=NOW - 29) and check(body, key, now=NOW + 300 + 29)


def test_key_formats():
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes_raw()
    public = key.public_key().public_bytes_raw()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    for text in (pem, base64.b64encode(seed).decode(), base64.b64encode(seed + public).decode()):
        assert sig.private_key(text).public_key().public_bytes_raw() == public
    for text in (public_pem, base64.b64encode(public).decode()):
        assert sig.public_key(text).public_bytes_raw() == public
    for bad in ("", "not base64!", base64.b64encode(b"short").decode(), base64.b64encode(seed + seed).decode()):
        with pytest.raises(ValueError):
            sig.private_key(bad)
    with pytest.raises(ValueError):
        sig.public_key(pem)  # a private key where the public one belongs

