"""Simulated payment providers, real HTTP servers on 127.0.0.1: a mobile-money provider
speaking the protocol of ``adaptors/mobile_money.py`` with faults a caller can inject, and a
G2P Connect receiver checking signatures. For tests (through the fixtures of ``testing.py``),
the benchmark (``bench/stages/payroll.py``) and training set-ups: they hold no state beyond
the process and talk to nothing else.

The mobile-money provider deliberately does **not** deduplicate references unless told to,
and counts how many times each reference was received for payment: a client that resends a
payment it is not sure about would show up as a reference received twice.
"""


from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
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

ZERO_DECIMAL = {"BIF", "XOF", "RWF"}
# Faults, consumed one per payment or status request:
#   "5xx_before"   answer 503 without doing anything
#   "5xx_after"    do the work, then answer 503 (the client cannot know it happened)
#   "timeout_after" do the work, then stall past the client's timeout
#   "expire_token" invalidate the caller's token before doing anything (401)
#   "redirect"     answer 302 to ``redirect_to`` (a client that follows it carries its bearer
#                  token to that host)
FAULTS = ("ok", "5xx_before", "5xx_after", "timeout_after", "expire_token")


@dataclass
class Payment:
    reference: str
    amount: Any
    msisdn: str
    status: str = "PENDING"
    transaction_id: str = ""


@dataclass
class Provider:
    client_secret: str
    signing_key: str
    callback_key: str
    algorithm: str = "hmac-sha256"
    token_lifetime: float = 300.0
    stall: float = 0.6
    failing_msisdns: set[str] = field(default_factory=set)
    faults: list[str] = field(default_factory=list)
    payments: dict[str, Payment] = field(default_factory=dict)
    receipts: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, float] = field(default_factory=dict)
    token_requests: int = 0
    callbacks: list[tuple[bytes, str]] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    rejected: list[str] = field(default_factory=list)
    redirect_to: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    # --- what the handler does ---------------------------------------------------------------

    def issue_token(self, body: dict[str, Any]) -> tuple[int, Any]:
        if body.get("client_secret") != self.client_secret:
            return 401, {"error": "invalid_client"}
        with self.lock:
            self.token_requests += 1
            token = secrets.token_hex(8)
            self.tokens[token] = time.monotonic() + self.token_lifetime
        return 200, {"access_token": token, "expires_in": self.token_lifetime}

    def authorised(self, header: str) -> bool:
        token = header.removeprefix("Bearer ")
        with self.lock:
            return self.tokens.get(token, 0) > time.monotonic()

    def next_fault(self) -> str:
        with self.lock:
            return self.faults.pop(0) if self.faults else "ok"

    def signature(self, payment: dict[str, Any]) -> str:
        message = "|".join(str(payment[k]) for k in ("reference", "amount", "msisdn"))
        if self.algorithm == "md5":
            return hashlib.md5((self.signing_key + message).encode(), usedforsecurity=False).hexdigest()
        return hmac.new(self.signing_key.encode(), message.encode(), hashlib.sha256).hexdigest()

    def pay(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        results = []
        for item in body.get("payments", []):
            reference = item["reference"]
            whole = item["currency"] in ZERO_DECIMAL
            if not hmac.compare_digest(item.get("signature", ""), self.signature(item)):
                self.rejected.append(reference)
                results.append({"reference": reference, "status": "REJECTED", "message": "BAD_SIGNATURE"})
                continue
            if whole != isinstance(item["amount"], int):
                self.rejected.append(reference)
                results.append({"reference": reference, "status": "REJECTED", "message": "BAD_AMOUNT"})
                continue
            with self.lock:
                self.receipts[reference] = self.receipts.get(reference, 0) + 1
                self.payments.setdefault(reference, Payment(reference, item["amount"], item["msisdn"],
                                                            transaction_id=f"MM-{len(self.payments):06d}"))
            results.append({"reference": reference, "status": "ACCEPTED",
                            "transaction_id": self.payments[reference].transaction_id})
        return results

    def status(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        results = []
        for reference in body.get("references", []):
            payment = self.payments.get(reference)
            if payment is None:
                results.append({"reference": reference, "status": "NOT_FOUND"})
            else:
                results.append({"reference": reference, "status": payment.status,
                                "transaction_id": payment.transaction_id})
        return results

    # --- what a test does --------------------------------------------------------------------

    def settle(self) -> None:
        """Pending payments reach their final status; a signed callback is queued for each."""
        for payment in self.payments.values():
            if payment.status == "PENDING":
                payment.status = "FAILED" if payment.msisdn in self.failing_msisdns else "SUCCESS"
                body = json.dumps({"reference": payment.reference, "status": payment.status,
                                   "transaction_id": payment.transaction_id}).encode()
                signature = hmac.new(self.callback_key.encode(), body, hashlib.sha256).hexdigest()
                self.callbacks.append((body, signature))


def _handler(provider: Provider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def reply(self, code: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            try:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout fault)

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            if self.path == "/oauth/token":
                self.reply(*provider.issue_token(body))
                return
            if self.path not in ("/payments", "/payments/status"):
                self.reply(404, {"error": "not found"})
                return
            with provider.lock:
                provider.in_flight += 1
                provider.max_in_flight = max(provider.max_in_flight, provider.in_flight)
            try:
                self.serve(body)
            finally:
                with provider.lock:
                    provider.in_flight -= 1

        def serve(self, body: dict[str, Any]) -> None:
            fault = provider.next_fault()
            if fault == "redirect":
                self.send_response(302)
                self.send_header("Location", provider.redirect_to)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if fault == "expire_token":
                with provider.lock:
                    provider.tokens.pop(self.headers.get("Authorization", "").removeprefix("Bearer "), None)
            if not provider.authorised(self.headers.get("Authorization", "")):
                self.reply(401, {"error": "token expired"})
                return
            if fault == "5xx_before":
                self.reply(503, {"error": "busy"})
                return
            results = provider.pay(body) if self.path == "/payments" else provider.status(body)
            if fault == "5xx_after":
                self.reply(502, {"error": "gateway"})
                return
            if fault == "timeout_after":
                time.sleep(provider.stall)
            self.reply(200, {"results": results})

    return Handler


def serve(provider: Provider, port: int = 0) -> ThreadingHTTPServer:
    """Serve ``provider`` on 127.0.0.1 (a free port unless one is given, so a test can stop the
    provider and bring it back where its clients expect it); stop with ``shutdown()`` and
    ``server_close()``."""
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(provider))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@contextmanager
def running(provider: Provider) -> Iterator[str]:
    """Serve ``provider`` on a free port of 127.0.0.1; yields its base URL."""
    server = serve(provider)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# --- a simulated G2P Connect receiver ----------------------------------------------------------
# A simulated G2P Connect disbursement receiver (a bank or payment switch) on 127.0.0.1.
#
# It checks the signature of every request it gets against coremis's public key and answers an
# unsigned or badly signed one with the specification's ERR acknowledgement
# (``err.signature.missing`` / ``err.signature.invalid``), and it signs its ``/on-disburse``
# callbacks with its own Ed25519 key. Only the splitting of a body into its members is borrowed
# from the adaptor; the digest, the signing string and the key handling are written again here,
# so a mistake in the adaptor's would not be mirrored by the receiver it is tested against.

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


def _g2p_handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
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
def running_receiver(receiver: Receiver) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _g2p_handler(receiver))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
