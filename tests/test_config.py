import pytest

from mt.config import ConfigError, MTConfig, describe, load_config, parse_override


def test_defaults_are_the_papers():
    cfg = MTConfig()
    assert (cfg.sampling.k, cfg.sampling.temperature, cfg.sampling.top_p) == (5, 0.8, 0.95)
    assert (cfg.estep.beta, cfg.estep.learning_rate, cfg.estep.global_batch_size) == (0.01, 7e-7, 128)
    assert (cfg.estep.max_length, cfg.estep.warmup_ratio, cfg.estep.lr_scheduler) == (2048, 0.1, "cosine")
    assert cfg.estep.save_steps == 50 and cfg.select.tau == 0.6
    assert (cfg.mstep.learning_rate, cfg.mstep.global_batch_size) == (2e-6, 512)
    assert cfg.mstep.eps == "reward_std" and cfg.mstep.filter and cfg.mstep.init == "previous"
    assert cfg.estep.reference == "previous"


def test_reconstructed_fields_are_marked():
    marked = {key for key, _, _, rec in describe(MTConfig()) if rec}
    assert {"estep.beta", "select.tau", "mstep.eps", "estep.pair_rule", "mstep.init", "data.rm_parts"} <= marked
    assert "sampling.k" not in marked


def test_layers_preset_file_overrides(tmp_path):
    extra = tmp_path / "extra.toml"
    extra.write_text("[estep]\nbeta = 0.2\n[select]\ntau = 0.55\n")
    cfg = load_config("tiny", extra, ["select.tau=0.7", "data.pm_parts=1,2"])
    assert cfg.estep.beta == 0.2  # file over preset
    assert cfg.select.tau == 0.7  # override over file
    assert cfg.estep.learning_rate == 2e-4  # from the preset
    assert cfg.data.pm_parts == [1, 2]
    assert cfg.sampling.k == 5  # untouched default


def test_paper_preset_loads_and_validates():
    cfg = load_config("paper")
    assert cfg.models.policy == "meta-llama/Meta-Llama-3-8B-Instruct"
    assert cfg.models.reward == "sfairXC/FsfairX-LLaMA3-RM-v0.1"
    assert cfg.sampling.backend == "vllm"
    assert cfg.data.prompts == "HuggingFaceH4/ultrafeedback_binarized"


@pytest.mark.parametrize(
    "override, message",
    [
        ("estep.betta=0.1", "unknown config key 'estep.betta'"),
        ("nosuch.key=1", "unknown config key 'nosuch'"),
        ("sampling.k=five", "sampling.k: expected an integer"),
        ("mstep.eps=var", "mstep.eps='var': expected one of reward_std, margin_std"),
        ("select.enabled=maybe", "select.enabled: expected true or false"),
        ("data.pm_parts=4", "data.pm_parts=[4]"),
        ("estep.per_device_batch_size=5", "not a multiple"),
    ],
)
def test_bad_values_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_config(None, None, [override])


def test_unknown_preset_lists_known():
    with pytest.raises(ConfigError, match="known presets: .*paper.*tiny"):
        load_config("nope")


def test_override_values_parse_as_toml():
    assert parse_override("a.b=0.5") == (["a", "b"], 0.5)
    assert parse_override("a.b=true") == (["a", "b"], True)
    assert parse_override("a.b=some/path") == (["a", "b"], "some/path")
    assert parse_override('a.b=[1, 2]') == (["a", "b"], [1, 2])
    with pytest.raises(ConfigError):
        parse_override("novalue")


def test_none_is_accepted_for_optional_fields():
    cfg = load_config(None, None, ["data.max_prompts=none", "estep.bf16=none"])
    assert cfg.data.max_prompts is None and cfg.estep.bf16 is None
    cfg = load_config(None, None, ["data.max_prompts=10"])
    assert cfg.data.max_prompts == 10


def test_digest_changes_with_config():
    assert load_config("tiny").digest() == load_config("tiny").digest()
    assert load_config("tiny").digest() != load_config("tiny", overrides=["run.seed=1"]).digest()
