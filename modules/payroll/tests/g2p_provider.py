"""A simulated G2P Connect disbursement receiver (a bank or payment switch) on 127.0.0.1."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Receiver:
    token: str
    callback_key: str
    failing_payees: set[str] = field(default_factory=set)
    faults: list[str] = field(default_factory=list)  # "5xx_before" | "5xx_after" | "nack"
    disbursements: dict[str, dict[str, Any]] = field(default_factory=dict)
    receipts: dict[str, int] = field(default_factory=dict)
    envelopes: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_disburse(self) -> list[tuple[bytes, str]]:
        """Settle pending disbursements; one signed on-disburse callback per transaction."""
        by_transaction: dict[str, list[dict[str, Any]]] = {}
        for item in self.disbursements.values():
            if item["status"] == "pdng":
                item["status"] = "rjct" if item["payee_fa"] in self.failing_payees else "succ"
                by_transaction.setdefault(item["transaction_id"], []).append(
                    {"reference_id": item["reference_id"], "status": item["status"],
                     "instruction": f"BANK-{item['reference_id'][-6:]}",
                     "reason_code": "rjct.payee_fa.invalid" if item["status"] == "rjct" else ""})
        callbacks = []
        for txn, statuses in by_transaction.items():
            body = json.dumps({"signature": "", "header": {"version": "1.0.0", "action": "on-disburse",
                                                           "status": "succ", "total_count": len(statuses)},
                               "message": {"transaction_id": txn, "disbursements_status": statuses}}).encode()
            callbacks.append((body, hmac.new(self.callback_key.encode(), body, hashlib.sha256).hexdigest()))
        return callbacks


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
            envelope = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            if self.headers.get("Authorization") != f"Bearer {receiver.token}":
                self.reply(401, {"error": "unauthorised"})
                return
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
