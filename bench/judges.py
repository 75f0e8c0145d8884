"""Judges: one narrow interface for every way of asking "which answer is better?".

A judge turns chat requests into text; each benchmark renders its official prompt into the request
and parses the text the way the official tool does, so a remote model, a local model and an
in-process function are interchangeable. ``CachedJudge`` wraps any judge from outside (as
lm-evaluation-harness wraps its models): answers are stored on disk by content, so a rerun or a
resumed run sends only what is missing.

Judges may also offer ``iter_complete(requests)``, yielding ``(index, text)`` as each answer
finishes; ``CachedJudge`` uses it to store every answer the moment it arrives. A judge that knows
what its answers cost keeps ``prompt_tokens`` and ``completion_tokens`` counters (the API's
``usage`` field); ``CachedJudge.stats`` reports them per benchmark with the calls, cache hits, wall
time and, given prices, an estimated cost.

Judge kinds are registered in ``JUDGES`` (``openai``, ``transformers``, ``callable``); each knows how
to build itself from the target of a ``KIND:TARGET`` command-line spec.
"""

from __future__ import annotations

import email.utils
import hashlib
import http.client
import json
import logging
import os
import random
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path
from typing import Any, Protocol

from mt.errors import UserError
from mt.records import InputError
from mt.registry import Registry, UnknownName

ProgressFn = Callable[[int], None]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JudgeRequest:
    """One judge call: the chat to send, and the same content as fields for in-process judges."""

    messages: tuple[tuple[str, str], ...]  # (role, content) pairs, the official prompt rendered
    fields: tuple[tuple[str, str], ...] = ()  # e.g. ("instruction", ...), ("output_1", ...), ("output_2", ...)
    temperature: float = 0.0
    max_tokens: int = 1024

    def field(self, name: str) -> str:
        return dict(self.fields)[name]

    def key(self, judge_id: str) -> str:
        payload = json.dumps([judge_id, self.messages, self.fields, self.temperature, self.max_tokens])
        return hashlib.sha256(payload.encode()).hexdigest()

    def chat(self) -> list[dict[str, str]]:
        """The messages in the chat-completions (and chat-template) shape."""
        return [{"role": role, "content": content} for role, content in self.messages]


class Judge(Protocol):
    identity: str  # what the cache is keyed by: the backend, the model and its settings (never a secret)

    def complete(self, requests: Sequence[JudgeRequest], progress: ProgressFn | None = None) -> list[str]: ...


class JudgeError(UserError, RuntimeError):
    """A judge that cannot answer: the message names the endpoint, the status and what to check."""


JUDGES: Registry[Callable[..., Judge]] = Registry("judge")


def _collect(pairs: Iterable[tuple[int, Any]], n: int, progress: ProgressFn | None) -> list[Any]:
    out: list[Any] = [None] * n
    for i, answer in pairs:
        out[i] = answer
        if progress:
            progress(1)
    return out


@JUDGES.register("callable")
@dataclass
class CallableJudge:
    """An in-process function request -> text (the gold world, scripted judges in tests)."""

    fn: Callable[[JudgeRequest], str]
    identity: str = "callable"
    calls: int = field(default=0, init=False)

    def iter_complete(self, requests: Sequence[JudgeRequest]) -> Iterator[tuple[int, str]]:
        for i, r in enumerate(requests):
            answer = self.fn(r)
            self.calls += 1
            yield i, answer

    def complete(self, requests: Sequence[JudgeRequest], progress: ProgressFn | None = None) -> list[str]:
        return _collect(self.iter_complete(requests), len(requests), progress)

    @classmethod
    def from_spec(cls, target: str, **options: Any) -> CallableJudge:
        raise InputError(f"--judge callable:{target}: an in-process judge is built in Python "
                         f"(bench.judges.CallableJudge(fn)), not from the command line")


# ----------------------------------------------------------------------------- OpenAI-compatible

DEFAULT_BASE_URL = "https://api.openai.com/v1"


def _public_url(url: str) -> str:
    """The base URL without user:password or query, fit for identities and messages."""
    parts = urllib.parse.urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def _transient(status: int) -> bool:
    return status in (408, 409, 429) or status >= 500


@JUDGES.register("openai")
@dataclass
class OpenAIJudge:
    """Any OpenAI-compatible chat-completions endpoint: OpenAI itself, a vLLM or llama.cpp server.

    Plain ``urllib`` rather than the ``openai`` client: the retry policy and the error messages are
    ours to state and test, they do not change with the client's major version, and nothing retries
    twice. The API key is read from ``$api_key_env`` at each call and never stored, so neither
    ``repr`` nor ``identity`` nor an error can show it; without the variable no header is sent
    (local servers need none).
    """

    model: str
    base_url: str = DEFAULT_BASE_URL
    api_key_env: str = "OPENAI_API_KEY"
    max_concurrency: int = 8
    max_retries: int = 5  # attempts after the first, on connection errors, timeouts, 408/409/429/5xx
    backoff: float = 1.0  # seconds before the first retry, doubled each time, with jitter
    max_wait: float = 60.0  # cap on one wait, Retry-After included
    timeout: float = 120.0  # seconds per HTTP request
    calls: int = field(default=0, init=False)  # answers received
    retries: int = field(default=0, init=False)
    prompt_tokens: int = field(default=0, init=False)  # summed from each answer's `usage`, when the server sends it
    completion_tokens: int = field(default=0, init=False)

    def __post_init__(self):
        if self.max_concurrency < 1 or self.max_retries < 0:
            raise InputError(f"max_concurrency must be >= 1 and max_retries >= 0, got {self.max_concurrency} "
                             f"and {self.max_retries}")
        if not self.base_url.startswith(("http://", "https://")):
            raise InputError(f"judge base URL {_public_url(self.base_url)!r}: expected http(s)://HOST[:PORT]/v1")
        self._lock = threading.Lock()

    @property
    def identity(self) -> str:
        return f"openai:{self.model}@{_public_url(self.base_url)}"

    @classmethod
    def from_spec(cls, target: str, **options: Any) -> OpenAIJudge:
        """``MODEL[@URL]``: the base URL after the first ``@`` that starts http(s)://, else ``base_url=``, then
        ``$OPENAI_BASE_URL``, then OpenAI's."""
        spec = f"openai:{target}"
        found = re.match(r"(.*?)@(https?://.+)$", target)
        model = found.group(1) if found else target
        if found:
            url, given = found.group(2), options.get("base_url")
            if given and given.rstrip("/") != url.rstrip("/"):
                raise InputError(f"--judge {spec!r} names base URL {_public_url(url)}, --judge-base-url says "
                                 f"{_public_url(given)}: give one")
            options["base_url"] = url
        if not model:
            raise InputError(f"--judge {spec!r}: no model name; expected one of {'; '.join(SPEC_FORMS)}")
        options.setdefault("base_url", os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL)
        return cls(model, **_taken(cls, options))

    @property
    def endpoint(self) -> str:
        """Where requests go, as messages and logs show it (no credentials)."""
        return _public_url(self.base_url) + "/chat/completions"

    def complete(self, requests: Sequence[JudgeRequest], progress: ProgressFn | None = None) -> list[str]:
        return _collect(self.iter_complete(requests), len(requests), progress)

    def iter_complete(self, requests: Sequence[JudgeRequest]) -> Iterator[tuple[int, str]]:
        return self._run(requests, {}, _message_text)

    def top_logprobs(self, requests: Sequence[JudgeRequest], k: int = 5,
                     progress: ProgressFn | None = None) -> list[dict[str, float]]:
        """The k most likely first tokens and their log-probabilities, per request.

        AlpacaEval's default judge (weighted_alpaca_eval_gpt4_turbo) reads its preference from
        these rather than from the text; send such requests with ``max_tokens=1``.
        """
        return _collect(self.iter_top_logprobs(requests, k), len(requests), progress)

    def iter_top_logprobs(self, requests: Sequence[JudgeRequest], k: int = 5) -> Iterator[tuple[int, dict]]:
        return self._run(requests, {"logprobs": True, "top_logprobs": k}, self._first_token_logprobs)

    def _run(self, requests, extra: dict, parse) -> Iterator[tuple[int, Any]]:
        """Up to max_concurrency requests in flight; answers yielded as they finish, errors raised.

        After the first failure no further request is sent: the ones already in flight finish, the
        queued ones stop, and the first failure is the error raised.
        """
        if not requests:
            return
        key = os.environ.get(self.api_key_env) or None
        stop, failures = threading.Event(), []

        def ask(request: JudgeRequest):
            if stop.is_set():
                raise _Stopped
            try:
                return self._ask(request, extra, parse, key)
            except BaseException as e:
                failures.append(e)
                stop.set()
                raise

        pool = ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(requests)),
                                  thread_name_prefix="judge")
        try:
            pending = {pool.submit(ask, r): i for i, r in enumerate(requests)}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=lambda f: f.exception() is not None):  # answers before errors
                    try:
                        answer = future.result()
                    except _Stopped:
                        raise failures[0] from None
                    yield pending.pop(future), answer
        finally:
            stop.set()
            pool.shutdown(wait=False, cancel_futures=True)

    def _ask(self, request: JudgeRequest, extra: dict, parse, key: str | None):
        body = json.dumps({"model": self.model, "messages": request.chat(), "temperature": request.temperature,
                           "max_tokens": request.max_tokens, **extra}).encode()
        url = self.base_url.rstrip("/") + "/chat/completions"
        headers = {"Content-Type": "application/json", "User-Agent": "mt-repro"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        for attempt in range(self.max_retries + 1):
            try:
                with urllib.request.urlopen(urllib.request.Request(url, body, headers, method="POST"),
                                            timeout=self.timeout) as response:
                    data = response.read()
                break
            except urllib.error.HTTPError as e:
                detail = _error_detail(e, key)
                if not _transient(e.code):
                    raise JudgeError(self._fatal_message(e.code, detail, key)) from None
                failure, wait_s = f"HTTP {e.code}{detail}", _retry_after(e.headers)
            except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
                failure, wait_s = f"{type(e).__name__}: {getattr(e, 'reason', e)}", None
            if attempt == self.max_retries:
                raise JudgeError(f"judge {self.endpoint} failed after {attempt + 1} attempts; last: {failure}")
            delay = min(self.max_wait, wait_s if wait_s is not None
                        else self.backoff * 2**attempt * random.uniform(0.5, 1.0))
            with self._lock:
                self.retries += 1
            log.warning("judge %s: %s; retry %d/%d in %.2f s", self.endpoint, failure, attempt + 1,
                        self.max_retries, delay)
            time.sleep(delay)
        try:
            data = json.loads(data)
            answer = parse(data)
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as e:
            raise JudgeError(f"judge {self.endpoint} answered 200 with a body that is not a chat completion "
                             f"({type(e).__name__}: {e}); is the base URL an OpenAI-compatible /v1 root?") from None
        usage = data.get("usage") if isinstance(data, dict) else None
        with self._lock:
            self.calls += 1
            if isinstance(usage, dict):
                self.prompt_tokens += int(usage.get("prompt_tokens") or 0)
                self.completion_tokens += int(usage.get("completion_tokens") or 0)
        return answer

    def _fatal_message(self, status: int, detail: str, key: str | None) -> str:
        where = f"judge {self.endpoint} (model {self.model!r}) answered HTTP {status}{detail}"
        if status == 401:
            state = "is set but was refused" if key else "is not set"
            return f"{where}: check the API key in ${self.api_key_env}, which {state}"
        if status == 403:
            return f"{where}: the key in ${self.api_key_env} has no access to this model"
        if status == 404:
            return f"{where}: check the base URL (the /v1 root, e.g. http://127.0.0.1:8000/v1) and the model name"
        return f"{where}: the server rejected the request; check the model name and the request settings"

    def _first_token_logprobs(self, data: dict) -> dict[str, float]:
        content = (data["choices"][0].get("logprobs") or {}).get("content")
        if not content:
            raise JudgeError(f"judge {self.endpoint} returned no logprobs for model {self.model!r}; "
                             f"the endpoint or model may not support top_logprobs")
        return {t["token"]: float(t["logprob"]) for t in content[0]["top_logprobs"]}


class _Stopped(Exception):
    """A queued request not sent because an earlier one of its batch failed."""


def _message_text(data: dict) -> str:
    # A refusal or a tool call has no content: the benchmark counts it as unparseable.
    return data["choices"][0]["message"].get("content") or ""


def _error_detail(error: urllib.error.HTTPError, key: str | None) -> str:
    """The server's own error message, short, with the key blanked should a server echo it."""
    try:
        text = error.read().decode(errors="replace")
    except OSError:
        text = ""
    try:
        body = json.loads(text)
        inner = body.get("error", body)  # OpenAI: {"error": {"message"}}; vLLM: {"message"}
        text = str(inner.get("message", inner) if isinstance(inner, dict) else inner)
    except (ValueError, AttributeError):
        pass
    text = " ".join(text.split())[:300]
    if key:
        text = text.replace(key, "***")
    return f" ({text})" if text else ""


def _retry_after(headers) -> float | None:
    """Retry-After in seconds (a number or an HTTP date), or None when absent or unreadable."""
    value = headers.get("Retry-After") if headers else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


# ----------------------------------------------------------------------------- local model

@JUDGES.register("transformers")
@dataclass
class TransformersJudge:
    """A local causal LM as judge, through the policy's own generation path and chat template.

    Loaded at the first request that misses the cache (a cached rerun never loads it), then kept
    until ``close()``. Temperature 0 is greedy decoding (``mt.generate`` turns sampling off);
    top_p is 1, as the chat-completions default. The identity names the path, not the weights:
    change the weights in place and the cache must go with them.
    """

    path: str
    dtype: str = "auto"
    batch_size: int = 16
    seed: int = 0
    calls: int = field(default=0, init=False)

    def __post_init__(self):
        self._generator = None

    @property
    def identity(self) -> str:
        where = str(Path(self.path).resolve()) if Path(self.path).exists() else self.path
        return f"transformers:{where}|dtype={self.dtype}|seed={self.seed}"

    @property
    def loaded(self) -> bool:
        return self._generator is not None

    @classmethod
    def from_spec(cls, target: str, **options: Any) -> TransformersJudge:
        """``PATH``: a local causal LM folder (checked now, before anything runs) or a hub id."""
        from .checks import check_model

        check_model(target, "policy", "judge")
        return cls(target, **_taken(cls, options))

    def complete(self, requests: Sequence[JudgeRequest], progress: ProgressFn | None = None) -> list[str]:
        return _collect(self.iter_complete(requests), len(requests), progress)

    def iter_complete(self, requests: Sequence[JudgeRequest]) -> Iterator[tuple[int, str]]:
        """Batches of one (temperature, max_tokens), longest prompts first; each batch yielded as done."""
        from mt.generate import Sampling, load_generator

        if not requests:
            return
        if self._generator is None:
            self._generator = load_generator("transformers", self.path, dtype=self.dtype, batch_size=self.batch_size)

        def settings(i: int) -> tuple[float, int]:
            return requests[i].temperature, requests[i].max_tokens

        order = sorted(range(len(requests)), key=lambda i: (settings(i), -len(str(requests[i].messages))))
        batches = []
        for _, group in groupby(order, key=settings):
            group = list(group)
            batches += [group[lo: lo + self.batch_size] for lo in range(0, len(group), self.batch_size)]
        for idx in batches:
            first = requests[idx[0]]
            sampling = Sampling(n=1, temperature=first.temperature, top_p=1.0, max_new_tokens=first.max_tokens,
                                seed=self.seed)
            outputs = self._generator.generate([requests[i].chat() for i in idx], sampling)
            for i, completions in zip(idx, outputs, strict=True):
                self.calls += 1
                yield i, completions[0].text

    def close(self) -> None:
        if self._generator is not None:
            self._generator.close()
            self._generator = None


# ----------------------------------------------------------------------------- cache

class CachedJudge:
    """Answers keyed by (judge identity, request) in one JSONL file, appended as they arrive.

    Each answer is written and flushed the moment the wrapped judge returns it, under a lock, so a
    kill or a failed request mid-batch keeps every finished answer; a line torn by a kill is cut off
    when the file is read. Identical requests in one batch are asked once.
    """

    def __init__(self, judge: Judge, path: str | os.PathLike):
        self.judge = judge
        self.identity = judge.identity
        self.path = Path(path)
        self.hits = 0
        self.misses = 0
        self.seconds = 0.0  # wall time spent waiting for the judge (cache hits cost none)
        counts = _tokens(judge) is not None  # tokens of the answers asked now; None when the judge does not count
        self.prompt_tokens: int | None = 0 if counts else None
        self.completion_tokens: int | None = 0 if counts else None
        self._lock = threading.Lock()
        self._cache: dict[str, Any] = {}
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        data = self.path.read_bytes()
        whole = data[: data.rfind(b"\n") + 1]
        if len(whole) < len(data):  # a torn last line: drop it, or the next append would join it
            with self.path.open("r+b") as f:
                f.truncate(len(whole))
        for line in whole.decode().splitlines():
            try:
                row = json.loads(line)
                self._cache[row["key"]] = row["output"]
            except (json.JSONDecodeError, KeyError, TypeError):
                continue

    def complete(self, requests: Sequence[JudgeRequest], progress: ProgressFn | None = None) -> list[str]:
        keys = [r.key(self.identity) for r in requests]
        fetch = getattr(self.judge, "iter_complete", None) or _as_iter(self.judge.complete)
        return self._cached(requests, keys, fetch, progress)

    def top_logprobs(self, requests: Sequence[JudgeRequest], k: int = 5,
                     progress: ProgressFn | None = None) -> list[dict[str, float]]:
        """First-token top logprobs of judges that have them (``OpenAIJudge``), cached like text."""
        if not hasattr(self.judge, "iter_top_logprobs"):
            raise TypeError(f"judge {self.identity} does not return logprobs")
        keys = [r.key(f"{self.identity}|top_logprobs={k}") for r in requests]
        return self._cached(requests, keys, lambda rs: self.judge.iter_top_logprobs(rs, k), progress)

    def _cached(self, requests, keys: list[str], fetch, progress: ProgressFn | None) -> list[Any]:
        with self._lock:
            missing = list(dict.fromkeys(k for k in keys if k not in self._cache))
        first: dict[str, int] = {}
        for i, k in enumerate(keys):
            first.setdefault(k, i)
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        if progress and len(keys) > len(missing):
            progress(len(keys) - len(missing))
        if missing:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            before, start = _tokens(self.judge), time.perf_counter()
            try:
                with self.path.open("a") as f:
                    for j, answer in fetch([requests[first[k]] for k in missing]):
                        row = {"key": missing[j], "judge": self.identity, "output": answer}
                        with self._lock:
                            f.write(json.dumps(row) + "\n")
                            f.flush()
                            self._cache[missing[j]] = answer
                        if progress:
                            progress(1)
            finally:
                self.seconds += time.perf_counter() - start
                after = _tokens(self.judge)
                if after is not None:
                    self.prompt_tokens += after[0] - before[0]
                    self.completion_tokens += after[1] - before[1]
        return [self._cache[k] for k in keys]

    def stats(self, prices: dict[str, float] | None = None) -> dict[str, Any]:
        """What judging cost this run: calls sent, cache hits, tokens (the API's usage), wall time, and the
        estimated cost when ``prices`` per 1,000 prompt/completion tokens are given."""
        return judge_usage(self.identity, self.misses, self.hits, self.prompt_tokens, self.completion_tokens,
                           self.seconds, prices, cache=str(self.path))

    def close(self) -> None:
        if hasattr(self.judge, "close"):
            self.judge.close()


def _tokens(judge: Any) -> tuple[int, int] | None:
    """(prompt, completion) tokens a judge has counted so far, or None when it does not count them."""
    if not hasattr(judge, "prompt_tokens"):
        return None
    return judge.prompt_tokens, judge.completion_tokens


def judge_usage(judge: str | None, calls: int = 0, cache_hits: int = 0, prompt_tokens: int | None = None,
                completion_tokens: int | None = None, seconds: float = 0.0,
                prices: dict[str, float] | None = None, cache: str | None = None) -> dict[str, Any]:
    """One benchmark's judge usage as results.json records it; ``judge`` None = no judge was asked."""
    cost = None
    if prices is not None and prompt_tokens is not None:
        cost = round((prompt_tokens * prices["prompt"] + (completion_tokens or 0) * prices["completion"]) / 1000, 6)
    return {"judge": judge, "cache": cache, "judge_calls": calls, "cache_hits": cache_hits,
            "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "seconds": round(seconds, 3),
            "estimated_cost": cost, "prices_per_1k": prices}


def _as_iter(complete: Callable[[Sequence[JudgeRequest]], list[str]]):
    """A judge with ``complete`` only: its whole batch arrives at once."""
    return lambda requests: enumerate(complete(requests))


# ----------------------------------------------------------------------------- CLI specs

SPEC_FORMS = ("openai:MODEL (base URL from --judge-base-url, else $OPENAI_BASE_URL, else api.openai.com)",
              "openai:MODEL@http://HOST:PORT/v1 (any OpenAI-compatible server, e.g. vLLM)",
              "transformers:PATH (a local causal LM folder or hub id)")


def load_judge(spec: str, **options: Any) -> Judge:
    """A judge from a command-line string ``KIND:TARGET``, its kind looked up in ``JUDGES``.

    Split at the first colon, so model names may hold colons (``openai:ft:gpt-4o-mini:org::id``).
    ``openai:MODEL[@URL]`` is any OpenAI-compatible endpoint; ``transformers:PATH`` a local causal LM.
    Options are the kinds' fields (``base_url``, ``api_key_env``, ``max_concurrency``, ``dtype``, ...);
    None and those a kind lacks are ignored, so one CLI can pass them all. Nothing is contacted or loaded.
    """
    kind, sep, target = spec.partition(":")
    kind, target = kind.strip(), target.strip()
    forms = "; ".join(SPEC_FORMS)
    if not sep or not target:
        raise InputError(f"--judge {spec!r}: expected one of {forms}")
    try:
        factory = JUDGES.get(kind)
    except UnknownName as e:
        raise InputError(f"--judge {spec!r}: {e}; expected one of {forms}") from None
    return factory.from_spec(target, **{k: v for k, v in options.items() if v is not None})


def _taken(cls, options: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in cls.__dataclass_fields__.values() if f.init}
    return {k: v for k, v in options.items() if k in names}
