import dataclasses
import math
import types
import typing

import pytest

from mt.config import MTConfig, load_config
from mt.options import ConfigError, check_fields, describe, load_section, parse_override, range_text


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
    assert cfg.estep.learning_rate == 1e-4  # from the preset
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


# ---------------------------------------------------------------- ranges
def _sections():
    """(prefix, dataclass) for every section of MTConfig and every method's options."""
    import importlib
    import pkgutil

    import reproduce.methods

    out = [(f"{f.name}.", type(getattr(MTConfig(), f.name))) for f in dataclasses.fields(MTConfig)
           if dataclasses.is_dataclass(getattr(MTConfig(), f.name))]
    for info in pkgutil.iter_modules(reproduce.methods.__path__):
        module = importlib.import_module(f"reproduce.methods.{info.name}")
        out += [("method.", obj) for name, obj in vars(module).items()
                if name.endswith("Options") and dataclasses.is_dataclass(obj) and obj.__module__ == module.__name__]
    return out


def _numeric_type(tp):
    """int or float for a numeric field, optional ones included; None for bool, str, list and the rest."""
    union = typing.get_origin(tp) in (typing.Union, types.UnionType)
    args = {a for a in typing.get_args(tp) if a is not type(None)} if union else {tp}
    return args.pop() if len(args) == 1 and args <= {int, float} else None


def _numeric_fields():
    for prefix, cls in _sections():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if tp := _numeric_type(hints[f.name]):
                yield prefix, cls, f, tp


NUMERIC = list(_numeric_fields())


def test_the_walk_finds_every_section_and_numeric_field():
    names = {cls.__name__ for _, cls in _sections()}
    assert {"SPPOOptions", "OfflineDPOOptions", "RLPOptions", "SeamFilterOptions", "MetaRewardingOptions",
            "EStepConfig", "MStepConfig", "WorldConfig"} <= names
    keys = {p + f.name for p, _, f, _ in NUMERIC}
    assert {"estep.beta", "data.max_prompts", "select.temperature", "method.eft_epochs", "world.seed"} <= keys
    assert not {"data.pm_parts", "estep.bf16", "select.enabled", "method.rho"} & keys  # lists and bools: own checks


@pytest.mark.parametrize("prefix, cls, f, tp", NUMERIC, ids=[f"{c.__name__}.{f.name}" for _, c, f, _ in NUMERIC])
def test_every_numeric_knob_declares_a_range_its_default_satisfies(prefix, cls, f, tp):
    assert range_text(f.metadata), f"{prefix}{f.name} declares no range (give option(..., ge=/gt=/le=/lt=)"
    check_fields(cls(), prefix)


def _step(tp, value, direction):
    return value + direction if tp is int else math.nextafter(value, direction * math.inf)


@pytest.mark.parametrize("prefix, cls, f, tp", NUMERIC, ids=[f"{c.__name__}.{f.name}" for _, c, f, _ in NUMERIC])
def test_each_bound_is_exact_and_the_error_is_one_line(prefix, cls, f, tp):
    """Just past a bound is refused with key, value and range; the bound itself (or just inside) passes."""
    m = f.metadata
    cases = []  # (value, accepted)
    for key, inside in (("gt", 1), ("ge", 1), ("lt", -1), ("le", -1)):
        if key in m:
            bound = tp(m[key])
            strict = key in ("gt", "lt")
            cases += [(bound if strict else _step(tp, bound, -inside), False),
                      (_step(tp, bound, inside) if strict else bound, True)]
    for value, accepted in cases:
        section = cls()
        setattr(section, f.name, value)
        if accepted:
            check_fields(section, prefix)
            continue
        with pytest.raises(ConfigError) as err:
            check_fields(section, prefix)
        assert str(err.value) == f"{prefix}{f.name}={value!r}: expected {range_text(m)}"
        assert "\n" not in str(err.value)


@pytest.mark.parametrize("override, message", [
    ("estep.beta=-0.1", "estep.beta=-0.1: expected > 0"),
    ("estep.beta=0", "estep.beta=0.0: expected > 0"),
    ("estep.beta=nan", "estep.beta=nan: expected > 0"),
    ("mstep.learning_rate=-1e-6", "mstep.learning_rate=-1e-06: expected >= 0"),
    ("sampling.temperature=-0.5", "sampling.temperature=-0.5: expected >= 0"),
    ("sampling.top_p=0", "sampling.top_p=0.0: expected in (0, 1]"),
    ("sampling.top_p=1.5", "sampling.top_p=1.5: expected in (0, 1]"),
    ("sampling.k=1", "sampling.k=1: expected >= 2"),
    ("sampling.max_new_tokens=0", "sampling.max_new_tokens=0: expected >= 1"),
    ("estep.save_steps=0", "estep.save_steps=0: expected >= 1"),
    ("estep.per_device_batch_size=0", "estep.per_device_batch_size=0: expected >= 1"),  # before the modulo
    ("data.selection_size=0", "data.selection_size=0: expected >= 1"),
    ("data.max_prompts=0", "data.max_prompts=0: expected >= 1"),
    ("select.temperature=-1", "select.temperature=-1.0: expected >= 0"),
    ("select.tau=1.01", "select.tau=1.01: expected in [0, 1]"),
    ("mstep.heldout_fraction=1", "mstep.heldout_fraction=1.0: expected in [0, 1)"),
    ("world.hack_marker_right=-0.1", "world.hack_marker_right=-0.1: expected in [0, 1]"),
    ("run.iterations=0", "run.iterations=0: expected >= 1"),
    ("run.seed=-1", "run.seed=-1: expected in [0, 2147483647]"),
])
def test_out_of_range_values_are_refused_in_one_line(override, message):
    with pytest.raises(ConfigError) as err:
        load_config(None, None, [override])
    assert str(err.value) == message


@pytest.mark.parametrize("overrides", [
    ["sampling.top_p=1"], ["sampling.temperature=0"], ["sampling.k=2"], ["select.tau=0"], ["select.tau=1"],
    ["select.temperature=0"], ["mstep.heldout_fraction=0"], ["estep.save_steps=1"], ["estep.learning_rate=0"],
    ["data.max_prompts=1"], ["data.max_prompts=none"], ["world.hack_marker_right=1"], ["run.seed=2147483647"],
    ["data.selection_size=1", "select.enabled=false"],
])
def test_boundary_values_are_accepted(overrides):
    load_config(None, None, overrides)


def test_cross_field_checks():
    with pytest.raises(ConfigError, match=r"^world.demo_accuracy=0.9 \+ world.demo_mistakes=0.3"):
        load_config(None, None, ["world.demo_accuracy=0.9"])


@pytest.mark.parametrize("cls, data, message", [
    ("SPPOOptions", {"beta": 0}, "method.beta=0.0: expected > 0"),
    ("SPPOOptions", {"variant": "soft"}, "method.variant='soft': expected one of sppo, sppo_single, sppo_hard"),
    ("OfflineDPOOptions", {"pairs": "gold"}, "method.pairs='gold': expected one of annotated, rm_pi0"),
    ("RLPOptions", {"n": 1}, "method.n=1: expected >= 2"),
    ("RLPOptions", {"gamma": 1.5}, "method.gamma=1.5: expected in [0, 1]"),
    ("SeamFilterOptions", {"fraction": 1}, "method.fraction=1.0: expected in [0, 1)"),
    ("MetaRewardingOptions", {"n_judgments": 0}, "method.n_judgments=0: expected >= 1"),
    ("MetaRewardingOptions", {"judge_top_p": 0}, "method.judge_top_p=0.0: expected in (0, 1]"),
])
def test_method_options_are_checked_when_loaded(cls, data, message):
    options = {c.__name__: c for _, c in _sections()}[cls]
    with pytest.raises(ConfigError) as err:
        load_section(options, data, "method.")
    assert str(err.value) == message


def test_show_config_notes_carry_the_range():
    notes = {key: note for key, _, note, _ in describe(MTConfig())}
    assert notes["estep.beta"] == "DPO beta. Allowed values: > 0."
    assert notes["sampling.top_p"].endswith("Allowed values: in (0, 1].")
    assert "Allowed" not in notes["models.policy"]
