"""Runs each example receiver against a live Herald and checks what a receiver must do.

    python3 examples/receivers/check.py HERALD_BIN python node rust

For each receiver: a webhook points at it; a real event from Herald is verified and processed;
the same request again is recognised as a duplicate; a tampered body and a timestamp outside the
five-minute tolerance are refused with 400; after a secret rotation, Herald's requests verify at a
receiver holding the old secret and at one holding the new secret. Standard library only.
"""

import base64
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
COMMANDS = {
    "python": [os.path.join(HERE, "python/.venv/bin/python"), os.path.join(HERE, "python/receiver.py")],
    "node": ["node", os.path.join(HERE, "node/receiver.mjs")],
    "rust": [os.environ.get("HERALD_RECEIVER_RUST", "herald-receiver-example")],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, headers=None):
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None and "content-type" not in {k.lower() for k in req.headers}:
        req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            text = res.read()
            return res.status, json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        text = e.read()
        return e.code, json.loads(text) if text else None


def eventually(what, check, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


class Herald:
    def __init__(self, binary: str):
        self.dir = tempfile.mkdtemp()
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}/api/v1"
        env = dict(
            os.environ,
            HERALD_DATABASE_URL=f"sqlite://{self.dir}/herald.db?mode=rwc",
            HERALD_LISTEN=f"127.0.0.1:{self.port}",
            HERALD_DESTINATION_ALLOWLIST="127.0.0.0/8",
            HERALD_LOG="warn",
        )
        self.key = subprocess.run(
            [binary, "api-key", "create", "--name", "receivers"], env=env, check=True, capture_output=True, text=True
        ).stdout.strip().splitlines()[-1]
        self.process = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        eventually("Herald", lambda: self.health())

    def health(self):
        try:
            return http("GET", f"{self.base}/health")[0] == 200
        except OSError:
            return False

    def api(self, method, path, body=None):
        status, answer = http(method, f"{self.base}{path}", body, {"authorization": f"Bearer {self.key}"})
        assert status < 300, f"{method} {path}: {status} {answer}"
        return answer

    def sent_request(self, webhook_id: str, event_id: str):
        """The request Herald sent for this event, as its attempt log shows it."""
        deliveries = self.api("GET", f"/deliveries?webhook_id={webhook_id}&limit=250")["items"]
        delivery = next(d for d in deliveries if d["event_id"] == event_id)
        request = self.api("GET", f"/deliveries/{delivery['id']}")["attempts"][0]["request"]
        headers = {k: v for k, v in request["headers"].items() if k.startswith("webhook-") or k == "content-type"}
        return headers, request["body"].encode()

    def stop(self):
        self.process.terminate()
        self.process.wait(10)


class Receiver:
    def __init__(self, language: str, secret: str, port: int):
        env = dict(os.environ, WEBHOOK_SECRET=secret, PORT=str(port))
        self.url = f"http://127.0.0.1:{port}/"
        self.process = subprocess.Popen(COMMANDS[language], env=env, stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        assert line.startswith("listening"), f"{language} receiver did not start: {line!r}"

    def processed(self):
        return http("GET", self.url)[1]

    def post(self, headers, body):
        return http("POST", self.url, body, headers)[0]

    def stop(self):
        self.process.terminate()
        self.process.wait(10)


def check(herald: Herald, language: str) -> None:
    port = free_port()
    hook = herald.api(
        "POST", "/webhooks", {"name": f"{language} example", "url": f"http://127.0.0.1:{port}/", "event_types": ["example.*"]}
    )
    receiver = Receiver(language, hook["secret"], port)
    second = None
    try:
        first_event = herald.api("POST", "/events", {"type": "example.created", "payload": {"n": 1}})["id"]
        eventually(f"{language}: Herald's signed event processed", lambda: first_event in receiver.processed())
        headers, body = herald.sent_request(hook["id"], first_event)

        assert receiver.post(headers, body) == 200, "the same webhook-id again is a duplicate, answered 2xx"
        assert receiver.processed().count(first_event) == 1, "a duplicate is not processed twice"

        tampered = body.replace(b'"n":1', b'"n":2').replace(b'"n": 1', b'"n": 2')
        assert tampered != body
        assert receiver.post(headers, tampered) == 400, "a tampered body is refused"

        stale_ts = int(time.time()) - 600
        stale = dict(headers, **{"webhook-id": "msg_stale", "webhook-timestamp": str(stale_ts)})
        stale["webhook-signature"] = sign(hook["secret"], "msg_stale", stale_ts, body)
        assert receiver.post(stale, body) == 400, "a timestamp ten minutes old is refused"
        fresh_ts = int(time.time())
        fresh = dict(headers, **{"webhook-id": "msg_fresh", "webhook-timestamp": str(fresh_ts)})
        fresh["webhook-signature"] = sign(hook["secret"], "msg_fresh", fresh_ts, body)
        assert receiver.post(fresh, body) == 204, "the same signature made now verifies (so time was the reason)"

        new_secret = herald.api("POST", f"/webhooks/{hook['id']}/rotate-secret", {"grace_period_secs": 3600})["secret"]
        rotated_event = herald.api("POST", "/events", {"type": "example.created", "payload": {"n": 3}})["id"]
        eventually(f"{language}: verified with the old secret during the grace period",
                   lambda: rotated_event in receiver.processed())
        headers, body = herald.sent_request(hook["id"], rotated_event)
        assert len(headers["webhook-signature"].split(" ")) == 2, "both secrets sign during the grace period"
        second = Receiver(language, new_secret, free_port())
        assert second.post(headers, body) == 204, "the same request verifies with the new secret"
        print(f"[receivers] {language}: verified, de-duplicated, refused tampered and stale, rotation ok", flush=True)
    finally:
        receiver.stop()
        if second:
            second.stop()
        herald.api("DELETE", f"/webhooks/{hook['id']}")


def main() -> None:
    herald = Herald(sys.argv[1])
    try:
        for language in sys.argv[2:] or list(COMMANDS):
            check(herald, language)
    finally:
        herald.stop()


if __name__ == "__main__":
    main()
