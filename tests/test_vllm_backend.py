"""The vLLM backend without vLLM: a fake ``vllm`` module records what our backend hands it.

vLLM needs a GPU, so CI can never run it. What can go wrong on our side is the mapping: which
sampling values reach ``SamplingParams``, which token ids reach ``LLM.generate``, and how outputs
come back. A recording fake checks exactly that.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field

import pytest

from mt.chat import as_messages, encode_prompt
from mt.config import load_config
from mt.generate import Completion, Sampling, TransformersGenerator, VLLMGenerator, load_generator
from mt.modeling import load_tokenizer

PROMPTS = [as_messages("sort 3 1 2"), as_messages("a much longer prompt than the others"), as_messages("x")]


@dataclass
class FakeOutput:
    text: str
    token_ids: list[int]
    finish_reason: str
    stop_reason: int | None = None


@dataclass
class FakeRequestOutput:
    prompt_token_ids: list[int]
    outputs: list[FakeOutput]


@dataclass
class FakeSamplingParams:
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 16
    seed: int | None = None
    skip_special_tokens: bool = True


@dataclass
class Recorder:
    llm_kwargs: list[dict] = field(default_factory=list)
    calls: list[tuple[list[dict], FakeSamplingParams, dict]] = field(default_factory=list)


def fake_vllm(recorder: Recorder, eos_id: int) -> types.ModuleType:
    """A ``vllm`` module whose LLM answers each request, in order, with n made-up completions.

    Completion j of request i is ``f"r{i}s{j}"``; odd j end with EOS (kept in token_ids, as vLLM
    does), even j run to max_tokens.
    """

    class LLM:
        def __init__(self, **kwargs):
            recorder.llm_kwargs.append(kwargs)

        def generate(self, requests, params, **kwargs):
            recorder.calls.append((requests, params, kwargs))
            out = []
            for i, req in enumerate(requests):
                comps = []
                for j in range(params.n):
                    if j % 2:
                        comps.append(FakeOutput(f"r{i}s{j}", [7] * 3 + [eos_id], "stop"))
                    else:
                        comps.append(FakeOutput(f"r{i}s{j}", [7] * params.max_tokens, "length"))
                out.append(FakeRequestOutput(req["prompt_token_ids"], comps))
            return out

    module = types.ModuleType("vllm")
    module.LLM = LLM
    module.SamplingParams = FakeSamplingParams
    return module


@pytest.fixture
def recorder(monkeypatch, tiny_models) -> Recorder:
    rec = Recorder()
    eos = load_tokenizer(str(tiny_models[0])).eos_token_id
    monkeypatch.setitem(sys.modules, "vllm", fake_vllm(rec, eos))
    return rec


def test_sampling_maps_field_for_field(recorder, tiny_models):
    gen = load_generator("vllm", str(tiny_models[0]), tensor_parallel_size=2, gpu_memory_utilization=0.7, seed=5)
    assert isinstance(gen, VLLMGenerator)
    sampling = Sampling(n=4, temperature=0.7, top_p=0.9, max_new_tokens=33, seed=11)
    gen.generate(PROMPTS, sampling)
    (_, params, kwargs), = recorder.calls
    assert (params.n, params.temperature, params.top_p, params.max_tokens, params.seed) == (4, 0.7, 0.9, 33, 11)
    assert params.skip_special_tokens and kwargs == {"use_tqdm": False}
    llm = recorder.llm_kwargs[0]
    assert llm["model"] == str(tiny_models[0])
    assert (llm["tensor_parallel_size"], llm["gpu_memory_utilization"], llm["seed"]) == (2, 0.7, 5)


def test_greedy_sampling_sends_no_nucleus_cut(recorder, tiny_models):
    gen = load_generator("vllm", str(tiny_models[0]))
    gen.generate(PROMPTS[:1], Sampling(n=1, temperature=0.0, top_p=0.5, max_new_tokens=4))
    params = recorder.calls[0][1]
    assert params.temperature == 0.0 and params.top_p == 1.0


def test_prompts_are_our_chat_template_tokenised_once(recorder, tiny_models, monkeypatch):
    """vLLM gets token ids, not text, and they are the ids the transformers backend feeds its model."""
    import mt.generate as generate_module

    counted = []

    def counting_encode(tokenizer, prompt):
        counted.append(prompt)
        return encode_prompt(tokenizer, prompt)

    monkeypatch.setattr(generate_module, "encode_prompt", counting_encode)
    gen = load_generator("vllm", str(tiny_models[0]))
    gen.generate(PROMPTS, Sampling(n=2, max_new_tokens=3))
    assert len(counted) == len(PROMPTS)
    sent = [r["prompt_token_ids"] for r in recorder.calls[0][0]]
    assert all(set(r) == {"prompt_token_ids"} for r in recorder.calls[0][0])

    fed = transformers_backend_inputs(str(tiny_models[0]), monkeypatch)
    assert sorted(sent) == sorted(fed)
    tok = load_tokenizer(str(tiny_models[0]))
    assert sent == [encode_prompt(tok, p) for p in PROMPTS]  # and in prompt order


def transformers_backend_inputs(model_path: str, monkeypatch) -> list[list[int]]:
    """The unpadded prompt ids TransformersGenerator passes to ``model.generate``."""
    gen = TransformersGenerator(model_path, batch_size=2)
    fed: list[list[int]] = []
    real = gen.model.generate

    def spy(input_ids, attention_mask, **kwargs):
        for ids, mask in zip(input_ids.tolist(), attention_mask.tolist(), strict=True):
            fed.append([t for t, m in zip(ids, mask, strict=True) if m])
        return real(input_ids=input_ids, attention_mask=attention_mask, **kwargs)

    monkeypatch.setattr(gen.model, "generate", spy)
    gen.generate(PROMPTS, Sampling(n=1, max_new_tokens=2))
    return fed


def test_outputs_come_back_in_prompt_order_as_completions(recorder, tiny_models):
    gen = load_generator("vllm", str(tiny_models[0]))
    out = gen.generate(PROMPTS, Sampling(n=3, max_new_tokens=5))
    assert [[c.text for c in comps] for comps in out] == [[f"r{i}s{j}" for j in range(3)] for i in range(3)]
    finished = out[0][1]
    truncated = out[0][0]
    # EOS is not a response token: counted as the transformers backend counts it.
    assert finished == Completion("r0s1", 3, True)
    assert truncated == Completion("r0s0", 5, False)
    assert gen.stats.completions == 9 and gen.stats.unfinished == 6
    assert gen.stats.new_tokens == 3 * (3 + 5 + 5)


def test_eos_as_the_last_allowed_token_is_finished(tiny_models):
    from mt.generate import _completion

    eos = load_tokenizer(str(tiny_models[0])).eos_token_id
    assert _completion(FakeOutput("ab", [5, 6, eos], "length"), {eos}) == Completion("ab", 2, True)
    assert _completion(FakeOutput("", [], "length"), {eos}) == Completion("", 0, False)


def test_without_vllm_the_error_says_how_to_install(monkeypatch, tiny_models):
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` raise ImportError
    with pytest.raises(ImportError, match=r"pip install 'mt-repro\[vllm\]'"):
        load_generator("vllm", str(tiny_models[0]))


def test_paper_preset_samples_with_vllm_through_the_loop(recorder, tiny_models, tmp_path):
    """The paper preset's loop builds a VLLMGenerator with the preset's sampling values."""
    from mt.engine import Engine

    cfg = load_config("paper")
    assert cfg.sampling.backend == "vllm"
    engine = Engine(cfg, tmp_path / "run")
    try:
        rows = [{"prompt": p} for p in PROMPTS]
        sampling = engine.sampling(cfg.sampling.k, seed=3)
        outs, stats = engine.generate(str(tiny_models[0]), rows, sampling, "sampling")
    finally:
        engine.close()
    params = recorder.calls[0][1]
    s = cfg.sampling
    assert (params.n, params.temperature, params.top_p, params.max_tokens, params.seed) == (
        s.k, s.temperature, s.top_p, s.max_new_tokens, 3)
    assert recorder.llm_kwargs[0]["tensor_parallel_size"] == s.tensor_parallel_size
    assert [len(o) for o in outs] == [s.k] * len(PROMPTS) and stats["completions"] == s.k * len(PROMPTS)
