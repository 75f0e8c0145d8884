"""A loopback judge: a real HTTP server on 127.0.0.1 that speaks the OpenAI chat-completions API.

It answers by script. By default the reply is ``ANSWER:`` + the upper-cased last message, and the
content decides failures: ``flaky-503 ...`` / ``flaky-429 ...`` fail their first attempt (429 with
Retry-After: 0.3), ``down ...`` always gets 503, ``bad ...`` 400, ``slow ...`` waits 0.15 s. Given
``answer(body) -> text``, that function writes the reply instead. A wrong key gets a 401 that echoes
it back, as a careless server might; a reply given as bytes is sent as the raw body. ``logprobs`` requests get first-token top logprobs; every
answer carries a ``usage`` field (tokens counted as characters / 4). ``stop_after(n)`` makes every
request after the n-th answer fail with a 400, as a judge that goes away mid-run.

It counts requests, answers, in-flight requests and the Authorization headers it saw.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEY = "sk-test-0123456789-secret"


def tokens(text: str) -> int:
    return len(text) // 4 + 1


class ScriptedServer:
    def __init__(self, key: str | None = KEY, answer: Callable[[dict], str] | None = None):
        self.key = key
        self.answer = answer
        self.lock = threading.Lock()
        self.requests = 0
        self.answered = 0  # 200 responses
        self.limit: int | None = None
        self.seen: Counter[str] = Counter()
        self.times: dict[str, list[float]] = {}
        self.auth: list[str | None] = []
        self.bodies: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def start(self) -> ScriptedServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def stop_after(self, answers: int | None) -> None:
        """Answer ``answers`` more requests, then refuse every one with a 400 (None: answer again)."""
        with self.lock:
            self.limit = None if answers is None else self.answered + answers

    def reply(self, body: dict) -> tuple[int, dict, dict]:
        text = body["messages"][-1]["content"]
        with self.lock:
            self.seen[text] += 1
            attempt = self.seen[text]
            self.times.setdefault(text, []).append(time.monotonic())
            if self.limit is not None and self.answered >= self.limit:
                return 400, {}, {"error": {"message": "the judge went away"}}
        if self.answer is None:
            if text.startswith("slow"):
                time.sleep(0.15)
            if text.startswith("flaky-503") and attempt == 1 or text.startswith("down"):
                return 503, {}, {"error": {"message": "overloaded"}}
            if text.startswith("flaky-429") and attempt == 1:
                return 429, {"Retry-After": "0.3"}, {"error": {"message": "rate limited"}}
            if text.startswith("bad"):
                return 400, {}, {"error": {"message": f"max_tokens too large for {body['model']}"}}
        content = self.answer(body) if self.answer is not None else "ANSWER:" + text.upper()
        choice = {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        if body.get("logprobs"):
            tops = [{"token": "m", "logprob": -0.1}, {"token": "M", "logprob": -2.5}][: body["top_logprobs"]]
            choice["logprobs"] = {"content": [{"token": "m", "logprob": -0.1, "top_logprobs": tops}]}
        prompt = tokens("".join(m["content"] for m in body["messages"]))
        completion = 1 if body.get("logprobs") else tokens(content)
        with self.lock:
            self.answered += 1
            self.prompt_tokens += prompt
            self.completion_tokens += completion
        return 200, {}, {"object": "chat.completion", "model": body["model"], "choices": [choice],
                         "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                                   "total_tokens": prompt + completion}}

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 5

            def do_POST(self):
                with server.lock:
                    server.requests += 1
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                    server.auth.append(self.headers.get("Authorization"))
                try:
                    body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                    with server.lock:
                        server.bodies.append(body)
                    if self.path != "/v1/chat/completions":
                        status, headers, payload = 404, {}, {"error": {"message": "no such route"}}
                    elif server.key and self.headers.get("Authorization") != f"Bearer {server.key}":
                        presented = self.headers.get("Authorization", "").removeprefix("Bearer ")
                        status, headers, payload = 401, {}, {"error": {"message": f"invalid api key {presented}"}}
                    else:
                        status, headers, payload = server.reply(body)
                finally:
                    # Counted out before the answer is sent: once the client has it, it may send its next
                    # request before this thread runs again, and that must not read as one more in flight.
                    with server.lock:
                        server.in_flight -= 1
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        return Handler
