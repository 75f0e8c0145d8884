"""Judges over a real loopback HTTP server (tests/judge_server.py), the on-disk cache, CLI specs and a tiny
local judge."""

from __future__ import annotations

import json
import logging

import pytest
from judge_server import KEY, ScriptedServer

from bench.judges import (
    JUDGES,
    CachedJudge,
    CallableJudge,
    JudgeError,
    JudgeRequest,
    OpenAIJudge,
    TransformersJudge,
    load_judge,
)
from mt.errors import UserError
from mt.records import InputError


@pytest.fixture
def server():
    s = ScriptedServer().start()
    yield s
    s.stop()


@pytest.fixture
def keyed(monkeypatch):
    monkeypatch.setenv("MT_JUDGE_KEY", KEY)
    return "MT_JUDGE_KEY"


def req(text: str, **kw) -> JudgeRequest:
    return JudgeRequest(messages=(("system", "You are a judge."), ("user", text)), **kw)


def judge_for(server, env, **kw) -> OpenAIJudge:
    return OpenAIJudge("judge-model", base_url=server.url, api_key_env=env, backoff=0.01, **kw)


def test_openai_judge_answers_in_order_and_retries_transient_failures(server, keyed, caplog):
    judge = judge_for(server, keyed, max_concurrency=4)
    texts = ["a", "flaky-503 b", "c", "flaky-429 d", "e"]
    ticks = []
    with caplog.at_level(logging.DEBUG, logger="bench.judges"):
        answers = judge.complete([req(t, temperature=0.0, max_tokens=7) for t in texts], ticks.append)
    assert answers == ["ANSWER:" + t.upper() for t in texts]
    assert sum(ticks) == len(texts)
    assert server.seen["flaky-503 b"] == 2 and server.seen["flaky-429 d"] == 2 and server.seen["a"] == 1
    assert server.requests == 7 and judge.retries == 2 and judge.calls == 5
    first, second = server.times["flaky-429 d"]
    assert second - first >= 0.29  # Retry-After: 0.3 honoured, although the backoff is 0.01 s
    body = server.bodies[0]
    assert body["model"] == "judge-model" and body["temperature"] == 0.0 and body["max_tokens"] == 7
    assert body["messages"][0] == {"role": "system", "content": "You are a judge."}
    # The key travels as a Bearer header only: not in the identity, the repr or the retry logs.
    assert set(server.auth) == {f"Bearer {KEY}"}
    assert any("retry" in r.getMessage() for r in caplog.records)
    for text in (judge.identity, repr(judge), caplog.text):
        assert KEY not in text
    assert judge.identity == f"openai:judge-model@{server.url}"


def test_last_retry_fails_with_endpoint_and_status(server, keyed):
    judge = judge_for(server, keyed, max_retries=2)
    with pytest.raises(JudgeError) as info:
        judge.complete([req("down x")])
    message = str(info.value)
    assert server.seen["down x"] == 3
    assert f"{server.url}/chat/completions" in message and "3 attempts" in message and "HTTP 503" in message


def test_401_fails_at_once_naming_the_env_var_without_the_key(server, monkeypatch):
    monkeypatch.setenv("WRONG_KEY_ENV", "sk-wrong-very-secret")
    with pytest.raises(JudgeError) as info:
        judge_for(server, "WRONG_KEY_ENV").complete([req("a")])
    message = str(info.value)
    assert server.requests == 1
    assert "401" in message and "$WRONG_KEY_ENV" in message and "refused" in message
    assert "sk-wrong-very-secret" not in message and "sk-wrong" not in repr(info.value)

    monkeypatch.delenv("WRONG_KEY_ENV")
    with pytest.raises(JudgeError, match=r"\$WRONG_KEY_ENV, which is not set"):
        judge_for(server, "WRONG_KEY_ENV").complete([req("a")])
    assert server.requests == 2 and server.auth[-1] is None


def test_400_and_404_fail_at_once_with_what_to_check(server, keyed):
    with pytest.raises(JudgeError, match="max_tokens too large for judge-model"):
        judge_for(server, keyed).complete([req("bad request")])
    assert server.requests == 1
    wrong_root = OpenAIJudge("judge-model", base_url=server.url.removesuffix("/v1"), api_key_env=keyed)
    with pytest.raises(JudgeError, match="check the base URL"):
        wrong_root.complete([req("a")])
    assert server.requests == 2


def test_no_request_is_sent_after_a_failure(server, keyed):
    judge = judge_for(server, keyed, max_concurrency=1)
    with pytest.raises(JudgeError, match="max_tokens too large"):
        judge.complete([req("a"), req("bad b"), req("c"), req("d"), req("e")])
    assert server.requests == 2 and server.seen["c"] == 0  # the queued requests were never sent


def test_connection_errors_are_retried_then_reported(keyed):
    closed = ScriptedServer()
    url = closed.url
    closed.httpd.server_close()  # nothing listens on that port any more
    judge = OpenAIJudge("m", base_url=url, api_key_env=keyed, max_retries=1, backoff=0.01)
    with pytest.raises(JudgeError, match="failed after 2 attempts"):
        judge.complete([req("a")])
    assert judge.retries == 1


def test_concurrency_is_bounded_and_used(server, keyed):
    judge = judge_for(server, keyed, max_concurrency=3)
    texts = [f"slow {i}" for i in range(9)]
    assert judge.complete([req(t) for t in texts]) == ["ANSWER:" + t.upper() for t in texts]
    assert server.max_in_flight == 3


def test_cached_rerun_sends_nothing(server, keyed, tmp_path):
    cache = tmp_path / "judge.jsonl"
    requests = [req("a"), req("flaky-503 b"), req("a"), req("c", temperature=0.7)]
    first = CachedJudge(judge_for(server, keyed), cache)
    answers = first.complete(requests)
    assert answers == ["ANSWER:A", "ANSWER:FLAKY-503 B", "ANSWER:A", "ANSWER:C"]
    assert server.requests == 4  # a, c, and b twice (the 503); the duplicate "a" is asked once
    assert first.stats()["judge_calls"] == 3 and first.hits == 1

    again = CachedJudge(judge_for(server, keyed), cache)
    ticks = []
    assert again.complete(requests, ticks.append) == answers
    assert server.requests == 4 and again.misses == 0 and again.hits == 4 and sum(ticks) == 4
    # Another model, or another temperature, is another key.
    other = CachedJudge(OpenAIJudge("other-model", base_url=server.url, api_key_env=keyed), cache)
    other.complete([req("a")])
    again.complete([req("a", temperature=0.3)])
    assert server.requests == 6


def test_top_logprobs_are_a_separate_cached_call(server, keyed, tmp_path):
    cached = CachedJudge(judge_for(server, keyed), tmp_path / "c.jsonl")
    assert cached.top_logprobs([req("a", max_tokens=1)], k=2) == [{"m": -0.1, "M": -2.5}]
    assert server.bodies[-1]["logprobs"] is True and server.bodies[-1]["top_logprobs"] == 2
    assert cached.complete([req("a", max_tokens=1)]) == ["ANSWER:A"]  # text is not served from the logprobs
    rerun = CachedJudge(judge_for(server, keyed), tmp_path / "c.jsonl")
    assert rerun.top_logprobs([req("a", max_tokens=1)], k=2) == [{"m": -0.1, "M": -2.5}]
    assert server.requests == 2
    with pytest.raises(TypeError, match="logprobs"):
        CachedJudge(CallableJudge(lambda r: "x"), tmp_path / "d.jsonl").top_logprobs([req("a")])


def test_cache_keeps_answers_of_a_batch_killed_midway(tmp_path):
    cache = tmp_path / "judge.jsonl"

    def dies_at_third(r: JudgeRequest) -> str:
        if r.messages[-1][1] == "q2":
            raise KeyboardInterrupt
        return r.messages[-1][1].upper()

    requests = [req(f"q{i}") for i in range(5)]
    with pytest.raises(KeyboardInterrupt):
        CachedJudge(CallableJudge(dies_at_third), cache).complete(requests)
    assert len(cache.read_text().splitlines()) == 2

    resumed = CallableJudge(lambda r: r.messages[-1][1].upper())
    assert CachedJudge(resumed, cache).complete(requests) == ["Q0", "Q1", "Q2", "Q3", "Q4"]
    assert resumed.calls == 3


def test_cache_drops_a_torn_last_line_and_appends_cleanly(tmp_path):
    cache = tmp_path / "judge.jsonl"
    judge = CallableJudge(lambda r: r.messages[-1][1] + "!")
    CachedJudge(judge, cache).complete([req("a"), req("b")])
    with cache.open("a") as f:
        f.write('{"key": "abc", "judge": "callable", "outp')  # a kill in the middle of a write
    cached = CachedJudge(judge, cache)
    assert cached.complete([req("a"), req("c")]) == ["a!", "c!"] and judge.calls == 3
    assert all(json.loads(line) for line in cache.read_text().splitlines())
    fresh = CachedJudge(judge, cache)
    assert fresh.complete([req("a"), req("b"), req("c")]) == ["a!", "b!", "c!"] and fresh.misses == 0


def test_cache_works_with_a_judge_that_has_complete_only(tmp_path):
    class Plain:
        identity = "plain"

        def complete(self, requests, progress=None):
            return [r.messages[-1][1] for r in requests]

    assert CachedJudge(Plain(), tmp_path / "p.jsonl").complete([req("x"), req("y")]) == ["x", "y"]
    assert CachedJudge(Plain(), tmp_path / "p.jsonl").complete([req("y")]) == ["y"]


def test_load_judge_specs(monkeypatch, tiny_models):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    default = load_judge("openai:gpt-4o-mini", base_url=None, api_key_env="K", max_concurrency=2)
    assert isinstance(default, OpenAIJudge)
    assert (default.model, default.base_url, default.api_key_env, default.max_concurrency) == (
        "gpt-4o-mini", "https://api.openai.com/v1", "K", 2)
    assert load_judge("openai:gpt-4o-mini", base_url="http://h:1/v1").base_url == "http://h:1/v1"
    monkeypatch.setenv("OPENAI_BASE_URL", "http://env:2/v1")
    assert load_judge("openai:m").base_url == "http://env:2/v1"
    local = load_judge("openai:meta-llama/Llama-3-8B@http://127.0.0.1:8000/v1")
    assert (local.model, local.base_url) == ("meta-llama/Llama-3-8B", "http://127.0.0.1:8000/v1")
    assert load_judge("openai:ft:gpt-4o-mini:org::abc").model == "ft:gpt-4o-mini:org::abc"
    assert load_judge("openai:m@https://u:p@proxy.example/v1").base_url == "https://u:p@proxy.example/v1"
    policy, reward = tiny_models
    local_judge = load_judge(f"transformers:{policy}", base_url=None, api_key_env="K", max_concurrency=8)
    assert isinstance(local_judge, TransformersJudge) and local_judge.path == str(policy)
    assert not local_judge.loaded
    with pytest.raises(InputError, match="hub is offline"):  # the suite runs with HF_HUB_OFFLINE=1
        load_judge("transformers:org/judge-model")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert load_judge("transformers:org/judge-model").path == "org/judge-model"  # a hub id, loaded when asked
    # A local judge is checked on disk when it is named, long before anything would load it.
    with pytest.raises(InputError, match="no such folder"):
        load_judge("transformers:/models/judge")
    with pytest.raises(InputError, match="not a causal LM"):
        load_judge(f"transformers:{reward}")
    for bad in ("gpt-4o", "openai:", "vllm:x", ":m", "openai:@http://127.0.0.1:8000/v1"):
        with pytest.raises(InputError, match="openai:MODEL@http"):
            load_judge(bad)
    with pytest.raises(InputError, match="give one"):
        load_judge("openai:m@http://a:1/v1", base_url="http://b:2/v1")
    with pytest.raises(InputError, match="expected http"):
        load_judge("openai:m", base_url="127.0.0.1:8000/v1")
    assert {"callable", "openai", "transformers"} <= set(JUDGES.names())
    with pytest.raises(InputError, match="unknown judge 'vllm'; known: callable, openai, transformers"):
        load_judge("vllm:x")
    with pytest.raises(InputError, match="built in Python"):
        load_judge("callable:my_module.fn")


def test_usage_tokens_time_and_cost_per_cached_run(server, keyed, tmp_path):
    requests = [req("a"), req("bb"), req("a"), req("ccc")]
    first = CachedJudge(judge_for(server, keyed), tmp_path / "c.jsonl")
    first.complete(requests)
    prices = {"prompt": 0.5, "completion": 2.0}
    stats = first.stats(prices)
    assert stats["judge_calls"] == 3 and stats["cache_hits"] == 1  # the duplicate "a" is asked once
    # Tokens are the server's own usage counts, summed; the cost follows from the prices per 1,000.
    assert (stats["prompt_tokens"], stats["completion_tokens"]) == (server.prompt_tokens, server.completion_tokens)
    assert stats["prompt_tokens"] > 0 and stats["seconds"] > 0
    assert stats["estimated_cost"] == pytest.approx(
        (server.prompt_tokens * 0.5 + server.completion_tokens * 2.0) / 1000)
    again = CachedJudge(judge_for(server, keyed), tmp_path / "c.jsonl")
    again.complete(requests)
    stats = again.stats(prices)
    assert (stats["judge_calls"], stats["cache_hits"], stats["prompt_tokens"], stats["estimated_cost"]) == (0, 4, 0, 0)
    assert CachedJudge(CallableJudge(lambda r: "x"), tmp_path / "d.jsonl").stats()["prompt_tokens"] is None


def test_judge_errors_are_user_errors_and_bad_bodies_are_judge_errors(keyed):
    assert issubclass(JudgeError, UserError)
    for body in (b"not json at all", b"[]", {"choices": []}, {"choices": [{"message": None}]}):
        answers = ScriptedServer(key=None).start()
        answers.reply = lambda _, body=body: (200, {}, body)  # noqa: B023
        try:
            with pytest.raises(JudgeError, match="not a chat completion"):
                OpenAIJudge("m", base_url=answers.url, api_key_env=keyed).complete([req("a")])
        finally:
            answers.stop()


def test_identity_has_no_credentials_from_the_url():
    judge = OpenAIJudge("m", base_url="https://user:pw@host.example:8443/v1/?token=t")
    assert judge.identity == "openai:m@https://host.example:8443/v1"


@pytest.fixture(scope="module")
def talking_policy(tmp_path_factory):
    """An untrained tiny policy that answers different prompts differently.

    With tied embeddings an untrained model echoes its last input token, here always the
    template's assistant marker (a special token, decoded as ""); shrinking the special tokens'
    embeddings lets the prompt's own characters win.
    """
    import torch

    from mt.tiny import build_policy, build_tokenizer, save

    tokenizer = build_tokenizer()
    model = build_policy(tokenizer)
    with torch.no_grad():
        model.get_input_embeddings().weight[tokenizer.all_special_ids] *= 0.05
    return save(model, tokenizer, tmp_path_factory.mktemp("judge") / "policy")


def test_transformers_judge_on_a_tiny_model(talking_policy, tmp_path):
    judge = TransformersJudge(str(talking_policy), batch_size=2)
    assert not judge.loaded and str(talking_policy) in judge.identity
    texts = ["add 57+8", "sort 4 0 3 1 9 9 2", "reverse hello", "x"]
    requests = [req(t, max_tokens=6) for t in texts]
    answers = judge.complete(requests)
    assert judge.loaded and len(answers) == 4 and all(isinstance(a, str) for a in answers)
    assert len(set(answers)) >= 3  # prompts get different answers, so the order check below bites
    # Greedy (temperature 0) is repeatable, and answers come back in request order.
    assert judge.complete(requests[::-1]) == answers[::-1]
    tokenizer = judge._generator.tokenizer
    assert all(0 < len(tokenizer(a, add_special_tokens=False)["input_ids"]) <= 6 for a in answers)
    mixed = judge.complete([requests[0], req("add 57+8", temperature=0.9, max_tokens=3), requests[2]])
    assert mixed[0] == answers[0] and mixed[2] == answers[2] and len(mixed[1]) <= 3
    cached = CachedJudge(judge, tmp_path / "t.jsonl")
    assert cached.complete(requests) == answers
    judge.close()
    assert not judge.loaded
    rerun = TransformersJudge(str(talking_policy), batch_size=2)
    assert CachedJudge(rerun, tmp_path / "t.jsonl").complete(requests) == answers and not rerun.loaded
