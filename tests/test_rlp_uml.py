"""RLP-UML: the multi-view loss terms, and TRL's RewardTrainer carrying views and adding lambda * L_M."""

import functools

import pytest
import torch
from safetensors.torch import load_file
from torch.distributions import Independent, Normal, kl_divergence
from trl import RewardTrainer

from mt.config import MStepConfig
from mt.modeling import load_reward_model, load_tokenizer
from mt.rlp.multiview import MultiViewHeads, js_mutual_information, shuffled, symmetric_kl
from mt.rlp.uml import HEADS, VIEW_COLUMNS, UMLConfig, UMLRewardTrainer, attach_views, clip_ids, view_pairs
from mt.updates import preference_dataset, reward_config


# ---------------------------------------------------------------- loss terms
def test_symmetric_kl_is_zero_for_identical_posteriors_and_positive_otherwise():
    torch.manual_seed(0)
    mean, std = torch.randn(5, 8), torch.rand(5, 8) + 0.1
    assert torch.equal(symmetric_kl(mean, std, mean, std), torch.zeros(5))
    other_mean, other_std = mean + 0.3, std * 1.5
    skl = symmetric_kl(mean, std, other_mean, other_std)
    assert (skl > 0).all()
    p, q = Independent(Normal(mean, std), 1), Independent(Normal(other_mean, other_std), 1)
    assert torch.allclose(skl, (kl_divergence(p, q) + kl_divergence(q, p)) / 2, atol=1e-5)


def test_shuffled_negatives_never_pair_a_row_with_its_own_partner():
    z = torch.arange(6.0).unsqueeze(-1)
    for _ in range(20):
        assert (shuffled(z) != z).all()


def test_js_estimate_is_about_minus_two_log_two_without_information():
    zeros = torch.zeros(100)
    assert js_mutual_information(zeros, zeros).item() == pytest.approx(-2 * torch.log(torch.tensor(2.0)).item())
    assert js_mutual_information(zeros + 5, zeros - 5) > js_mutual_information(zeros, zeros)


def trained_mi(dependent: bool, skl_weight: float | None, steps: int = 150) -> float:
    """Train heads and critic on views of a Gaussian; the MI estimate on fresh batches afterwards."""
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    heads = MultiViewHeads(8, z_dim=4, hidden=32)
    optimiser = torch.optim.Adam(heads.parameters(), lr=3e-3)

    def views(n=128):
        h1 = torch.randn(n, 8, generator=gen)
        return h1, (h1 + 0.1 * torch.randn(n, 8, generator=gen)) if dependent else torch.randn(n, 8, generator=gen)

    for _ in range(steps):
        out = heads(*views(), skl_weight=skl_weight or 0.0)
        loss = -out["mi"] if skl_weight is None else out["loss"]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        return sum(heads(*views(512))["mi"].item() for _ in range(4)) / 4


def test_js_estimate_is_higher_for_dependent_than_for_independent_views():
    dependent, independent = trained_mi(True, None), trained_mi(False, None)
    assert independent == pytest.approx(-1.386, abs=0.02)
    assert dependent > independent + 0.5


def test_the_kl_weight_decides_whether_the_heads_collapse():
    """The finding documented in mt/rlp/multiview.py: the paper's weight 1 collapses toy views, 1e-3 does not."""
    assert trained_mi(True, 1.0, steps=300) == pytest.approx(-1.386, abs=0.02)
    assert trained_mi(True, 1e-3, steps=300) > -1.0


# ---------------------------------------------------------------- views
SAMPLES = [{"id": "a", "prompt": [{"role": "user", "content": "add 1+2"}],
            "responses": [{"text": t} for t in ("3", "4", "Sure! 3")]},
           {"id": "b", "prompt": [{"role": "user", "content": "add 2+2"}], "responses": [{"text": "4"}]}]


def test_view_pairs_take_two_distinct_samples_per_prompt_seeded():
    views = view_pairs(SAMPLES, seed=1)
    assert len(views) == 1 and views[0]["view_prompt"] == SAMPLES[0]["prompt"]
    assert views[0]["view1"] != views[0]["view2"] and view_pairs(SAMPLES, seed=1) == views


def test_attach_views_cycles_the_views_over_the_pairs():
    pairs = [{"prompt": "p", "chosen": str(i), "rejected": "x"} for i in range(5)]
    views = [{"view_prompt": "q", "view1": f"v{i}", "view2": "w"} for i in range(2)]
    out = attach_views(pairs, views)
    assert [p["chosen"] for p in out] == ["0", "1", "2", "3", "4"]
    assert {p["view1"] for p in out} == {"v0", "v1"} and all(set(VIEW_COLUMNS) <= set(p) for p in out)
    with pytest.raises(ValueError, match="at least one view pair"):
        attach_views(pairs, [])


def test_clip_keeps_bos_and_the_end():
    assert clip_ids(list(range(10)), 4) == [0, 7, 8, 9] and clip_ids([1, 2], 4) == [1, 2]


# ---------------------------------------------------------------- trainer
def pairs_with_views(n=8):
    pairs = [{"prompt": [{"role": "user", "content": f"add {i}+1"}], "chosen": str(i + 1), "rejected": str(i + 2)}
             for i in range(n)]
    views = [{"view_prompt": [{"role": "user", "content": f"sort {i} 1"}], "view1": f"1 {i}", "view2": f"{i} 1"}
             for i in range(n)]
    return attach_views(pairs, views)


def make_trainer(tiny_models, tmp_path, uml=UMLConfig(), columns=VIEW_COLUMNS, trainer_cls=UMLRewardTrainer,
                 **cfg):
    path = str(tiny_models[1])
    model = load_reward_model(path, "float32")
    model.train()
    mcfg = MStepConfig(**{"learning_rate": 1e-3, "global_batch_size": 4, "per_device_batch_size": 4, "epochs": 1,
                          "max_length": 64, "gradient_checkpointing": False, "logging_steps": 1, **cfg})
    args = reward_config(mcfg, str(tmp_path / "trainer"), 0, 8)
    data = preference_dataset(pairs_with_views(), columns)
    kwargs = {"uml": uml} if trainer_cls is UMLRewardTrainer else {}
    return trainer_cls(model=model, args=args, train_dataset=data, processing_class=load_tokenizer(path), **kwargs)


def first_batch(trainer):
    return trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))


def test_views_reach_the_loss_as_padded_tensors(tiny_models, tmp_path):
    trainer = make_trainer(tiny_models, tmp_path)
    batch = first_batch(trainer)
    assert set(batch) == {"input_ids", "attention_mask", "view_input_ids", "view_attention_mask"}
    assert batch["view_input_ids"].shape[0] == batch["input_ids"].shape[0] == 8  # 4 chosen + 4 rejected; 4 + 4 views
    tok = trainer.processing_class
    texts = [tok.decode(ids[mask.bool()]) for ids, mask in zip(batch["view_input_ids"], batch["view_attention_mask"],
                                                                  strict=True)]
    # view1 rows, then the same prompts' view2 rows, each rendered with the chat template and EOS.
    for first, second in zip(texts[:4], texts[4:], strict=True):
        prompt = first.split("<|assistant|>")[0]
        assert second.startswith(prompt) and first.endswith("</s>") and first != second


def test_lambda_zero_is_exactly_the_parent_bt_loss(tiny_models, tmp_path):
    trainer = make_trainer(tiny_models, tmp_path, uml=UMLConfig(lam=0.0))
    batch = first_batch(trainer)
    plain = RewardTrainer.compute_loss(trainer, trainer.model, {k: v for k, v in batch.items()
                                                               if not k.startswith("view_")})
    assert torch.equal(trainer.compute_loss(trainer.model, dict(batch)), plain)


def test_lambda_adds_lambda_times_the_multiview_loss(tiny_models, tmp_path):
    trainer = make_trainer(tiny_models, tmp_path, uml=UMLConfig(lam=0.5))
    batch = first_batch(trainer)
    plain = RewardTrainer.compute_loss(trainer, trainer.model, {k: v for k, v in batch.items()
                                                               if not k.startswith("view_")})
    loss = trainer.compute_loss(trainer.model, dict(batch))
    logged = trainer._metrics["train"]
    assert logged["uml_loss"][-1] == pytest.approx(logged["uml_skl"][-1] - logged["uml_mi"][-1], abs=1e-5)
    assert loss.item() == pytest.approx(plain.item() + 0.5 * logged["uml_loss"][-1], abs=1e-5)


def test_the_multiview_loss_reaches_the_rm_backbone_but_not_its_score_head(tiny_models, tmp_path):
    trainer = make_trainer(tiny_models, tmp_path)
    batch = first_batch(trainer)
    model = trainer.model
    trainer.multiview_terms(model, batch["view_input_ids"], batch["view_attention_mask"])["loss"].backward()
    assert model.model.layers[0].self_attn.q_proj.weight.grad.abs().sum() > 0
    assert model.model.embed_tokens.weight.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in getattr(model, HEADS).encoder1.parameters())
    assert model.score.weight.grad is None


def test_training_logs_the_terms_changes_the_rm_and_saves_a_plain_rm(tiny_models, tmp_path):
    trainer = make_trainer(tiny_models, tmp_path, trainer_cls=functools.partial(UMLRewardTrainer, uml=UMLConfig()))
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.train()
    logged = [h for h in trainer.state.log_history if "loss" in h]
    assert len(logged) == 2 and all({"uml_loss", "uml_mi", "uml_skl", "accuracy"} <= set(h) for h in logged)
    after = trainer.model.state_dict()
    assert not torch.equal(before["model.layers.0.mlp.up_proj.weight"], after["model.layers.0.mlp.up_proj.weight"])
    assert not torch.equal(before[f"{HEADS}.critic.0.weight"], after[f"{HEADS}.critic.0.weight"])
    trainer.save_model(str(tmp_path / "rm"))
    saved = load_file(str(tmp_path / "rm" / "model.safetensors"))
    assert not any(k.startswith(HEADS) for k in saved)
    reloaded = load_reward_model(str(tmp_path / "rm"), "float32")
    assert reloaded.config.num_labels == 1 and not hasattr(reloaded, HEADS)
    assert torch.equal(reloaded.score.weight, after["score.weight"])


def test_missing_views_are_an_error_unless_lambda_is_zero(tiny_models, tmp_path):
    with pytest.raises(ValueError, match="view_prompt, view1, view2"):
        make_trainer(tiny_models, tmp_path, columns=())
    trainer = make_trainer(tiny_models, tmp_path, uml=UMLConfig(lam=0.0), columns=())
    assert set(first_batch(trainer)) == {"input_ids", "attention_mask"}


def test_the_m_step_trains_rlp_uml_with_the_view_columns(tiny_models, tmp_path):
    """``train_reward_model`` with the UML trainer and the view columns carried through."""
    import mt.updates
    from mt.config import ModelsConfig

    cfg = MStepConfig(learning_rate=1e-3, global_batch_size=4, per_device_batch_size=4, epochs=1, max_length=64,
                      gradient_checkpointing=False, logging_steps=1)
    out, metrics = mt.updates.train_reward_model(
        str(tiny_models[1]), pairs_with_views(), cfg, ModelsConfig(dtype="float32"), tmp_path, seed=0,
        trainer_cls=functools.partial(UMLRewardTrainer, uml=UMLConfig(lam=0.5)), extra_columns=VIEW_COLUMNS)
    assert metrics["rm_steps"] == 2 and metrics["rm_pairs_used"] == 8
    assert not any(k.startswith(HEADS) for k in load_file(str(out / "model.safetensors")))
