"""Sampling responses: one interface, a batched transformers backend and a vLLM backend.

``Generator.generate(prompts, sampling)`` returns, per prompt, ``sampling.n`` completions.
The transformers backend sorts prompts by length, left-pads, samples with the KV cache and seeds
every batch; the vLLM backend maps the same ``Sampling`` onto ``vllm.SamplingParams`` and is
imported only when asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from .chat import Messages, encode_prompt
from .modeling import load_causal_lm, load_tokenizer, release_memory
from .registry import Registry

ProgressFn = Callable[[int], None]


@dataclass(frozen=True)
class Sampling:
    n: int = 1
    temperature: float = 0.8
    top_p: float = 0.95
    max_new_tokens: int = 256
    seed: int = 0


@dataclass
class Completion:
    text: str
    num_tokens: int
    finished: bool  # ended with EOS rather than at max_new_tokens

    def to_dict(self) -> dict:
        return {"text": self.text, "num_tokens": self.num_tokens, "finished": self.finished}


@dataclass
class GenerationStats:
    prompts: int = 0
    completions: int = 0
    new_tokens: int = 0
    unfinished: int = 0
    seconds: float = 0.0


class Generator(Protocol):
    stats: GenerationStats

    def generate(self, prompts: Sequence[Messages], sampling: Sampling,
                 progress: ProgressFn | None = None) -> list[list[Completion]]: ...

    def close(self) -> None: ...


GENERATORS: Registry[Callable[..., Generator]] = Registry("generation backend")


@GENERATORS.register("transformers")
class TransformersGenerator:
    """Batched ``model.generate`` with left padding; prompts are tokenised once and sorted by length."""

    def __init__(self, model_path: str, dtype: str = "auto", batch_size: int = 64,
                 attn_implementation: str | None = None, trust_remote_code: bool = False, **_: object):
        self.tokenizer = load_tokenizer(model_path, trust_remote_code)
        self.model = load_causal_lm(model_path, dtype, attn_implementation, trust_remote_code)
        self.batch_size = batch_size
        self.stats = GenerationStats()

    @torch.no_grad()
    def generate(self, prompts: Sequence[Messages], sampling: Sampling,
                 progress: ProgressFn | None = None) -> list[list[Completion]]:
        import time

        start = time.perf_counter()
        tok, model = self.tokenizer, self.model
        encoded = [encode_prompt(tok, p) for p in prompts]
        order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
        out: list[list[Completion]] = [[] for _ in encoded]
        eos_ids = _eos_ids(model, tok)
        pad_id = tok.pad_token_id
        limit = getattr(model.config, "max_position_embeddings", None)
        for b, lo in enumerate(range(0, len(order), self.batch_size)):
            idx = order[lo: lo + self.batch_size]
            width = max(len(encoded[i]) for i in idx)
            input_ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):
                ids = encoded[i]
                input_ids[row, width - len(ids):] = torch.tensor(ids)
                mask[row, width - len(ids):] = 1
            max_new = sampling.max_new_tokens if limit is None else max(1, min(sampling.max_new_tokens, limit - width))
            torch.manual_seed(sampling.seed * 1_000_003 + b)
            sample = sampling.temperature > 0
            gen = model.generate(
                input_ids=input_ids.to(model.device),
                attention_mask=mask.to(model.device),
                do_sample=sample,
                temperature=sampling.temperature if sample else None,
                top_p=sampling.top_p if sample else None,
                top_k=0 if sample else None,
                max_new_tokens=max_new,
                num_return_sequences=sampling.n,
                pad_token_id=pad_id,
                eos_token_id=eos_ids,
            )
            new = gen[:, width:].tolist()
            for j, seq in enumerate(new):
                i = idx[j // sampling.n]
                cut = next((k for k, t in enumerate(seq) if t in eos_ids), None)
                tokens = seq if cut is None else seq[:cut]
                text = tok.decode(tokens, skip_special_tokens=True)
                out[i].append(Completion(text, len(tokens), cut is not None))
                self.stats.new_tokens += len(tokens)
                self.stats.unfinished += cut is None
            if progress:
                progress(len(idx))
        self.stats.prompts += len(encoded)
        self.stats.completions += len(encoded) * sampling.n
        self.stats.seconds += time.perf_counter() - start
        return out

    def close(self) -> None:
        del self.model
        release_memory()


def _eos_ids(model, tokenizer) -> list[int]:
    ids = model.generation_config.eos_token_id
    ids = ids if isinstance(ids, list) else [ids] if ids is not None else []
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids


@GENERATORS.register("vllm")
class VLLMGenerator:
    """vLLM behind the same interface; prompts are tokenised by our chat template, not vLLM's."""

    def __init__(self, model_path: str, dtype: str = "auto", tensor_parallel_size: int = 1,
                 gpu_memory_utilization: float = 0.9, seed: int = 0, trust_remote_code: bool = False,
                 max_model_len: int | None = None, **_: object):
        try:
            import vllm
        except ImportError as e:
            raise ImportError(
                "the vLLM generation backend needs vllm, which is not installed: "
                "pip install 'mt-repro[vllm]' (GPU machines only), or set sampling.backend=transformers"
            ) from e
        self._vllm = vllm
        self.tokenizer = load_tokenizer(model_path, trust_remote_code)
        self.eos_ids = _config_eos_ids(model_path, self.tokenizer)
        kwargs = dict(model=model_path, dtype="auto" if dtype == "auto" else dtype,
                      tensor_parallel_size=tensor_parallel_size, gpu_memory_utilization=gpu_memory_utilization,
                      seed=seed, trust_remote_code=trust_remote_code)
        if max_model_len:
            kwargs["max_model_len"] = max_model_len
        self.llm = vllm.LLM(**kwargs)
        self.stats = GenerationStats()

    def sampling_params(self, sampling: Sampling):
        """Our Sampling, field for field, as vLLM's SamplingParams."""
        return self._vllm.SamplingParams(
            n=sampling.n,
            temperature=sampling.temperature,
            top_p=sampling.top_p if sampling.temperature > 0 else 1.0,
            max_tokens=sampling.max_new_tokens,
            seed=sampling.seed,
            skip_special_tokens=True,
        )

    def generate(self, prompts: Sequence[Messages], sampling: Sampling,
                 progress: ProgressFn | None = None) -> list[list[Completion]]:
        import time

        start = time.perf_counter()
        requests = [{"prompt_token_ids": encode_prompt(self.tokenizer, p)} for p in prompts]
        outputs = self.llm.generate(requests, self.sampling_params(sampling), use_tqdm=False)
        result = []
        for req in outputs:
            comps = [_completion(o, self.eos_ids) for o in req.outputs]
            self.stats.new_tokens += sum(c.num_tokens for c in comps)
            self.stats.unfinished += sum(not c.finished for c in comps)
            result.append(comps)
        if progress:
            progress(len(prompts))
        self.stats.prompts += len(prompts)
        self.stats.completions += len(prompts) * sampling.n
        self.stats.seconds += time.perf_counter() - start
        return result

    def close(self) -> None:
        del self.llm
        try:
            from vllm.distributed.parallel_state import cleanup_dist_env_and_memory

            cleanup_dist_env_and_memory()
        except ImportError:
            pass
        release_memory()


def _completion(output, eos_ids: set[int]) -> Completion:
    """A vLLM CompletionOutput counted as the transformers backend counts it.

    vLLM keeps the token that ended a sequence (EOS or a generation-config stop id) in
    ``token_ids``, and reports ``length`` when that token is also the last one allowed; the
    transformers backend counts the tokens before it and calls the sequence finished. The pair
    rule compares lengths, so both backends must count alike. No stop strings are ever set.
    """
    ids = list(output.token_ids)
    ended = bool(ids) and (output.finish_reason == "stop" or ids[-1] in eos_ids)
    return Completion(output.text, len(ids) - ended, ended)


def _config_eos_ids(model_path: str, tokenizer) -> set[int]:
    """EOS ids as the transformers backend collects them: generation config's, plus the tokenizer's."""
    from transformers import GenerationConfig

    try:
        ids = GenerationConfig.from_pretrained(model_path).eos_token_id
    except OSError:  # no generation_config.json
        ids = None
    found = set(ids if isinstance(ids, list) else [] if ids is None else [ids])
    if tokenizer.eos_token_id is not None:
        found.add(tokenizer.eos_token_id)
    return found


def load_generator(backend: str, model_path: str, **kwargs) -> Generator:
    return GENERATORS.get(backend)(model_path, **kwargs)
