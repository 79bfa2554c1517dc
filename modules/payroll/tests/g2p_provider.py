"""A simulated G2P Connect disbursement receiver (a bank or payment switch) on 127.0.0.1.

It checks the signature of every request it gets against coremis's public key and answers an
unsigned or badly signed one with the specification's ERR acknowledgement
(``err.signature.missing`` / ``err.signature.invalid``), and it signs its ``/on-disburse``
callbacks with its own Ed25519 key. Only the splitting of a body into its members is borrowed
from the adaptor; the digest, the signing string and the key handling are written again here,
so a mistake in the adaptor's would not be mirrored by the receiver it is tested against.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from modules.payroll.adaptors.g2p_signature import envelope_parts


def _signing_text(created: int, expires: int, content: bytes) -> bytes:
    digest = base64.b64encode(hashlib.blake2b(content, digest_size=64).digest()).decode()
    return f"(created): {created}\n(expires): {expires}\ndigest: BLAKE-512={digest}".encode()


@dataclass
class Receiver:
    token: str
    coremis_key: Ed25519PublicKey   # what coremis's requests must be signed with
    key: Ed25519PrivateKey          # what this receiver signs its callbacks with
    sender_id: str = "bank"
    key_id: str = "bank-key-1"
    coremis_id: str = "coremis"
    coremis_key_id: str = "coremis-key-1"
    callback_key: str = ""          # for receivers configured with callback_auth "hmac"
    failing_payees: set[str] = field(default_factory=set)
    faults: list[str] = field(default_factory=list)  # "5xx_before" | "5xx_after" | "nack"
    disbursements: dict[str, dict[str, Any]] = field(default_factory=dict)
    receipts: dict[str, int] = field(default_factory=dict)
    envelopes: list[dict[str, Any]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # error codes of the requests refused
    lock: threading.Lock = field(default_factory=threading.Lock)

    def signature_problem(self, body: bytes) -> tuple[str, str] | None:
        """``None`` when coremis signed this body with its key and the signature is current."""
        try:
            parts = envelope_parts(body)
            signature = json.loads(parts.get("signature", '""'))
        except ValueError:
            return "err.request.bad", "not a JSON envelope"
        if not signature:
            return "err.signature.missing", "the request is not signed"
        params = dict(re.findall(r'(\w+)="([^"]*)"', signature))
        if params.get("kidId") != f"{self.coremis_id}|{self.coremis_key_id}|ed25519":
            return "err.signature.invalid", f"unknown signer {params.get('kidId')!r}"
        try:
            created, expires = int(params["created"]), int(params["expires"])
            value = base64.b64decode(params["signature"])
        except (KeyError, ValueError):
            return "err.signature.invalid", "unreadable signature"
        if not created - 5 <= time.time() <= expires + 5:
            return "err.signature.invalid", "the signature is not current"
        try:
            self.coremis_key.verify(value, _signing_text(created, expires,
                                                         (parts["header"] + parts["message"]).encode()))
        except (InvalidSignature, KeyError):
            return "err.signature.invalid", "the signature does not verify"
        return None

    def signed(self, header: dict[str, Any], message: dict[str, Any], *, key: Ed25519PrivateKey | None = None,
               key_id: str | None = None, sender_id: str | None = None, created: int | None = None,
               ttl: int = 600) -> bytes:
        """A callback body signed by this receiver (or as told), written the way this receiver
        writes JSON: spaced, signature last."""
        header_text, message_text = json.dumps(header), json.dumps(message)
        created = int(time.time()) if created is None else created
        value = (key or self.key).sign(_signing_text(created, created + ttl, (header_text + message_text).encode()))
        signature = (f'Signature: namespace="g2p", kidId="{sender_id or self.sender_id}|{key_id or self.key_id}|'
                     f'ed25519", algorithm="ed25519", created="{created}", expires="{created + ttl}", '
                     f'headers="(created) (expires) digest", signature="{base64.b64encode(value).decode()}"')
        return f'{{"header": {header_text}, "message": {message_text}, "signature": {json.dumps(signature)}}}'.encode()

    def hmac_of(self, body: bytes) -> str:
        return hmac.new(self.callback_key.encode(), body, hashlib.sha256).hexdigest()

    def settle(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """Settle pending disbursements; the header and message of one on-disburse callback per
        transaction."""
        by_transaction: dict[str, list[dict[str, Any]]] = {}
        for item in self.disbursements.values():
            if item["status"] == "pdng":
                item["status"] = "rjct" if item["payee_fa"] in self.failing_payees else "succ"
                by_transaction.setdefault(item["transaction_id"], []).append(
                    {"reference_id": item["reference_id"], "status": item["status"],
                     "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
                     "instruction": f"BANK-{item['reference_id'][-6:]}",
                     "status_reason_code": "rjct.payee_fa.invalid" if item["status"] == "rjct" else ""})
        return [({"version": "1.0.0", "message_id": str(uuid.uuid4()),
                  "message_ts": datetime.now(UTC).isoformat(timespec="seconds"), "action": "on-disburse",
                  "status": "succ", "total_count": len(statuses), "completed_count": len(statuses),
                  "sender_id": self.sender_id, "receiver_id": self.coremis_id},
                 {"transaction_id": txn, "disbursements_status": statuses})
                for txn, statuses in by_transaction.items()]

    def on_disburse(self) -> list[bytes]:
        """Settle pending disbursements; one signed on-disburse callback body per transaction."""
        return [self.signed(header, message) for header, message in self.settle()]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def reply(self, code: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.headers.get("Authorization") != f"Bearer {receiver.token}":
                self.reply(401, {"errors": [{"code": "err.request.unauthorized", "message": "bad token"}]})
                return
            problem = receiver.signature_problem(body)
            if problem:
                with receiver.lock:
                    receiver.refused.append(problem[0])
                self.reply(200, {"message": {"ack_status": "ERR", "correlation_id": "",
                                             "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
                                             "error": {"code": problem[0], "message": problem[1]}}})
                return
            envelope = json.loads(body)
            with receiver.lock:
                fault = receiver.faults.pop(0) if receiver.faults else "ok"
            if fault == "5xx_before":
                self.reply(503, {"error": "busy"})
                return
            if self.path == "/disburse":
                answer = self.disburse(envelope, fault)
            elif self.path == "/disburse/txn/status":
                asked = envelope["message"]["txnstatus_request"]["attribute_value"]
                known = [{"reference_id": r, "status": receiver.disbursements[r]["status"]}
                         for r in asked if r in receiver.disbursements]
                answer = {"header": {"action": "txn-status"},
                          "message": {"txnstatus_response": {"txn_type": "disburse", "txn_status": known}}}
            else:
                self.reply(404, {"error": "not found"})
                return
            if fault == "5xx_after":
                self.reply(502, {"error": "gateway"})
                return
            self.reply(200, answer)

        def disburse(self, envelope: dict[str, Any], fault: str) -> dict[str, Any]:
            if fault == "nack":
                return {"message": {"ack_status": "NACK", "error": {"code": "err.request.bad"}}}
            receiver.envelopes.append(envelope)
            message = envelope["message"]
            assert envelope["header"]["action"] == "disburse"
            assert envelope["header"]["total_count"] == len(message["disbursements"])
            with receiver.lock:
                for item in message["disbursements"]:
                    reference = item["reference_id"]
                    receiver.receipts[reference] = receiver.receipts.get(reference, 0) + 1
                    receiver.disbursements.setdefault(
                        reference, {**item, "status": "pdng", "transaction_id": message["transaction_id"]})
            return {"message": {"ack_status": "ACK", "correlation_id": message["transaction_id"]}}

    return Handler


@contextmanager
def running(receiver: Receiver) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
