"""A simulated mobile-money provider: a real HTTP server on 127.0.0.1 speaking the protocol
of ``adaptors/mobile_money.py``, with faults a test can inject.

It deliberately does **not** deduplicate references unless told to, and counts how many
times each reference was received for payment: a client that resends a payment it is not
sure about would show up as a reference received twice.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

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
