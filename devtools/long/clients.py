"""HTTP clients of the long tests: signed webhook deliveries and API calls,
each answer kept with its status, content type and time."""

import hashlib
import hmac
import json
import time
from dataclasses import dataclass

import requests


@dataclass
class Answer:
    status: int
    content_type: str
    body: dict | None
    seconds: float
    error: str = ""

    @property
    def is_json(self):
        return self.content_type.startswith("application/json") and self.body is not None


def call(method, url, raw=None, headers=None, timeout=60):
    started = time.monotonic()
    try:
        response = requests.request(method, url, data=raw, headers=headers or {}, timeout=timeout)
    except requests.RequestException as exc:
        return Answer(0, "", None, time.monotonic() - started, error=f"{type(exc).__name__}: {exc}"[:200])
    try:
        body = response.json()
    except ValueError:
        body = None
    return Answer(
        response.status_code, response.headers.get("Content-Type", ""), body, time.monotonic() - started
    )


def sign(secret, raw):
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def webhook(server, secret, payload):
    raw = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "X-Webhook-Signature": sign(secret, raw)}
    return call("POST", f"{server.url}/fayvad_api/erp/webhooks/billing/", raw, headers)


def api(server, key, method, path, payload=None, headers=None):
    all_headers = {"Authorization": f"Token {key}", "Content-Type": "application/json", **(headers or {})}
    raw = json.dumps(payload).encode() if payload is not None else None
    return call(method, f"{server.url}/fayvad_api/erp{path}", raw, all_headers)


def until_done(send, deadline=120.0, pause=0.5):
    """Send again while the answer is a 5xx or no answer at all (what a
    client is told it may retry); every answer, the last one last."""
    answers = []
    end = time.monotonic() + deadline
    while True:
        answer = send()
        answers.append(answer)
        if answer.status and answer.status < 500:
            return answers
        if time.monotonic() > end:
            return answers
        time.sleep(pause)
