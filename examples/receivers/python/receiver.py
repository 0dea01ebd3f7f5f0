"""A minimal webhook receiver for Herald, in Python with the `standardwebhooks` package.

    WEBHOOK_SECRET=whsec_... PORT=4000 python receiver.py

It verifies every request's signature (and that its timestamp is within five minutes), answers
400 to anything that does not verify, skips a `webhook-id` it has already seen (Herald delivers
at least once: a retry after a lost answer repeats a delivery), and answers 204 at once, doing
the work afterwards on a worker thread so that Herald never waits on it.
GET /received lists the ids processed so far (the examples' test reads it).
"""

import json
import os
import queue
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

verifier = Webhook(os.environ["WEBHOOK_SECRET"])
work: "queue.Queue[tuple[str, dict]]" = queue.Queue()
seen: set[str] = set()
processed: list[str] = []
lock = threading.Lock()


def worker() -> None:
    while True:
        webhook_id, event = work.get()
        # The real work goes here: update a database, call another service, ...
        with lock:
            processed.append(webhook_id)


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            event = verifier.verify(body, headers)
        except WebhookVerificationError as e:
            return self.answer(400, {"error": str(e)})
        webhook_id = headers["webhook-id"]
        with lock:
            duplicate = webhook_id in seen
            seen.add(webhook_id)
        if not duplicate:
            work.put((webhook_id, event))
        self.answer(204 if not duplicate else 200, {"duplicate": True} if duplicate else None)

    def do_GET(self) -> None:
        with lock:
            self.answer(200, list(processed))

    def answer(self, status: int, body) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


if __name__ == "__main__":
    threading.Thread(target=worker, daemon=True).start()
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("PORT", "4000"))), Handler)
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()
