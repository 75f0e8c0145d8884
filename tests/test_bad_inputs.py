"""Every bad input gets one clear line: a corpus of (command, bad input) cases, run as a user runs them.

Each case is a command line with one thing wrong: a file that is missing, empty, a folder, not UTF-8, binary
or malformed; a row without a column or with the wrong type; a model folder that does not exist, has no
tokenizer or weights, or has the wrong head; a reward model that gives NaN or infinite rewards; an offline
hub; a judge that is unreachable, slow, failing (5xx), refusing the key (401), answering something that is
not a chat completion, or answering verdicts that do not parse. For every case the command must

- exit with code 2 and print exactly one line on stderr, ``error: ...``, and no traceback;
- name the culprit (the file and line, the option or key, the model, the judge's endpoint);
- leave finished work next to it byte for byte as it was: a finished run directory, a finished benchmark
  result with its judge cache, a gold-world folder, an Arena-Hard data folder (``state`` below, hashed
  before and after every case).

Nothing here trains: the inputs are chosen to fail before training (local checks come first), and the
one case that fails inside a stage (NaN rewards) samples two tokens from an untrained tiny model.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from bench_fixtures import FIRST, alpaca_rows, arena_repo, v1_rows
from judge_server import ScriptedServer
from typer.testing import CliRunner

from reproduce.cli import app

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()

# ------------------------------------------------------------------------------------------------ the judge


class MisbehavingJudge(ScriptedServer):
    """One loopback endpoint, a behaviour per model name: ``ok`` ranks the first output first, ``unparseable``
    answers prose without a verdict, ``down`` is 503, ``locked`` 401, ``slow`` answers after 1 s, ``garbage``
    sends a body that is not JSON, ``empty`` a completion without choices."""

    def __init__(self):
        super().__init__(key=None, answer=lambda body: "Both answers are fine." if body["model"] == "unparseable"
                         else FIRST)
        # The slow case's client has gone when its answer is written: that broken pipe is expected, not news.
        self.httpd.handle_error = lambda request, client_address: None

    def reply(self, body):
        model = body["model"]
        if model == "down":
            return 503, {}, {"error": {"message": "overloaded"}}
        if model == "locked":
            return 401, {}, {"error": {"message": "invalid api key"}}
        if model == "garbage":
            return 200, {}, b"<html>502 Bad Gateway</html>"
        if model == "empty":
            return 200, {}, {"object": "chat.completion", "model": model, "choices": []}
        if model == "slow":
            time.sleep(1.0)
        return super().reply(body)


def closed_port() -> int:
    """A loopback port that nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------------------------ inputs


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under ``root`` (hidden ones too) -> the sha256 of its bytes."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def copy_model(src: Path, dst: Path, skip: tuple[str, ...] = ()) -> Path:
    dst.mkdir(parents=True)
    for f in src.iterdir():
        if f.name not in skip:
            shutil.copy(f, dst / f.name)
    return dst


def broken_reward_model(src: Path, dst: Path, value: float) -> Path:
    """The tiny RM with its score head set so that every reward is NaN (value nan) or infinite (value inf)."""
    import torch
    from transformers import AutoModelForSequenceClassification

    rm = AutoModelForSequenceClassification.from_pretrained(src)
    with torch.no_grad():
        rm.score.weight.fill_(value if value != value else 0.0)
        rm.score.weight[0, 0] = value
    rm.save_pretrained(dst)
    for f in src.iterdir():
        if f.name.startswith(("tokenizer", "chat_template")):
            shutil.copy(f, dst / f.name)
    return dst


@dataclass
class World:
    """The inputs of the corpus ({name} placeholders of the cases) and the finished work next to them."""

    paths: dict[str, str] = field(default_factory=dict)
    state: Path | None = None
    env: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, name: str) -> str:
        return self.paths[name]

    def add(self, name: str, path: Path, text: str | bytes | None = None) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        elif text is not None:
            path.write_text(text)
        self.paths[name] = str(path)
        return path


def jsonl(rows) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


NON_UTF8 = b'# a latin-1 file\nname = "caf\xe9"\n'
BINARY = bytes(range(256)) * 4


@pytest.fixture(autouse=True)
def no_world_is_built(monkeypatch):
    """A case that reached a world build (minutes) did not fail first: stop it at once."""
    import mt.world.build

    def refuse(*args, **kwargs):
        raise AssertionError("a bad-input case went on to build a gold world")

    monkeypatch.setattr(mt.world.build, "build_world", refuse)


@pytest.fixture(scope="module")
def judge():
    server = MisbehavingJudge().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def w(tmp_path_factory, tiny_models, judge) -> World:
    root = tmp_path_factory.mktemp("bad-inputs")
    world = World(env={"MT_REPRO_CACHE": str(root / "cache"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                       "COLUMNS": "250"})
    policy, reward = tiny_models
    f = root / "inputs"
    add = world.add
    world.paths.update(policy=str(policy), reward=str(reward), judge=judge.url, out=str(root / "out"),
                       nowhere=f"http://127.0.0.1:{closed_port()}/v1", hub_down=f"http://127.0.0.1:{closed_port()}")

    # models: missing, a file, no tokenizer, no weights, the wrong head, non-finite rewards
    add("missing_model", f / "no-such-model")
    add("model_file", Path(reward) / "config.json")
    add("no_tokenizer", copy_model(Path(reward), f / "no-tokenizer", skip=("tokenizer.json", "tokenizer_config.json")))
    add("no_weights", copy_model(Path(policy), f / "no-weights", skip=("model.safetensors",)))
    add("nan_rm", broken_reward_model(Path(reward), f / "nan-rm", float("nan")))
    add("inf_rm", broken_reward_model(Path(reward), f / "inf-rm", float("inf")))

    # generic bad files
    add("dir", f / "a-folder").mkdir()
    add("dir_toml", f / "folder.toml").mkdir()
    add("file", f / "a-file.txt", "not a folder\n")
    add("nonutf8_toml", f / "latin1.toml", NON_UTF8)
    add("binary_toml", f / "binary.toml", BINARY)
    add("bad_toml", f / "bad.toml", '[run]\nseed = 1\n[estep\nbeta = 0.1\n')
    add("empty_toml", f / "empty.toml", "")
    add("jobs_toml", f / "no-jobs.toml", 'preset = "tiny"\njobs = 0\n')
    add("nonutf8_jsonl", f / "latin1.jsonl", b'{"prompt": "ok"}\n{"prompt": "caf\xe9"}\n')
    add("binary_jsonl", f / "binary.jsonl", BINARY)
    add("empty_jsonl", f / "empty.jsonl", "")

    # prompts for train
    add("prompts", f / "prompts.jsonl", jsonl({"prompt": f"question {i}"} for i in range(3)))
    add("prompts_bad", f / "prompts-bad.jsonl", '{"prompt": "one"}\n{"prompt": "two",\n')
    add("prompts_nocol", f / "prompts-nocol.jsonl", jsonl([{"prompt": "one"}, {"text": "two"}]))
    add("prompts_int", f / "prompts-int.jsonl", jsonl([{"prompt": "one"}, {"prompt": 2}]))
    add("prompts_csv", f / "prompts.csv", 'prompt,id\n"one",1\n"two, unterminated,2\n')
    add("prompts_parquet", f / "prompts.parquet", b"PAR1 this is not parquet")

    # recipes with a [headline] table
    headline = 'preset = "tiny"\nseeds = 1\n[headline]\nseeds = 2\nvariants = {a = []}\n'
    add("headline_toml", f / "with-headline.toml", headline)
    add("headline_typed", f / "headline-typed.toml", headline.replace("seeds = 2", 'seeds = "many"'))

    # RewardBench rows
    add("rb", f / "rb.jsonl", jsonl(v1_rows()[:3]))
    add("rb_missing", f / "rb-missing.jsonl", jsonl([v1_rows()[0], {k: v for k, v in v1_rows()[1].items()
                                                                  if k != "rejected"}]))
    add("rb_type", f / "rb-type.jsonl", jsonl([{**v1_rows()[0], "chosen": ["a", "b"]}]))
    add("rb_malformed", f / "rb-malformed.jsonl", jsonl(v1_rows()[:2]) + '{"prompt": "p", "chosen": \n')
    add("rb_parquet", f / "rb.parquet", b"PAR1\x00\x00 truncated")

    # SEAM rows
    add("seam", f / "seam.jsonl", jsonl([{"prompt": "add 2+3", "answer": "5"}, {"prompt": "say hi", "answer": "hi"}]))
    add("seam_nocol", f / "seam-nocol.jsonl", jsonl([{"prompt": "add 2+3", "answer": "5"}, {"prompt": "say hi"}]))
    add("seam_bad", f / "seam-bad.jsonl", '{"prompt": "add 2+3", "answer": "5"}\n[1, 2]\n')
    add("seam_nonutf8", f / "seam-latin1.jsonl", b'{"prompt": "add 2+3", "answer": "5"}\n{"prompt": "caf\xe9"}\n')

    # AlpacaEval: data, outputs made elsewhere, annotations made elsewhere
    rows = alpaca_rows(3)
    add("ae_data", f / "alpaca.json", json.dumps(rows))
    add("ae_outputs", f / "outputs.json", json.dumps([{**r, "output": f"my answer {i}", "generator": "mine"}
                                                      for i, r in enumerate(rows)]))
    add("ae_bad", f / "alpaca-bad.json", '[\n{"instruction": "a", "output": "b"},\n{"instruction": }\n]\n')
    add("ae_type", f / "alpaca-type.json", json.dumps([rows[0], {**rows[1], "instruction": 7}]))
    annotation = {"instruction": rows[0]["instruction"], "output_1": "x", "output_2": "y", "generator_2": "them",
                  "preference": 2}
    add("ann_bad", f / "annotations-bad.json", json.dumps([annotation, {**annotation, "preference": 7}]))
    add("ann_unknown", f / "annotations-unknown.json", json.dumps([{**annotation, "instruction": "never asked"}]))
    add("ann_nonutf8", f / "annotations-latin1.json", b'[{"instruction": "caf\xe9"}]')

    # Arena-Hard: judgments and answers made elsewhere, a data folder with a bad question
    game = {"score": "A>B", "judgment": {"answer": "[[A>B]]"}}
    add("judgments_bad", f / "judgments-bad.jsonl", jsonl([{"uid": "u0", "games": [game, game]},
                                                          {"uid": "u1", "games": "A>B"}]))
    add("judgments_nonutf8", f / "judgments-latin1.jsonl",
        jsonl([{"uid": "u0", "games": [game, game]}]).encode() + b'{"uid": "caf\xe9"}\n')
    add("answers_bad", f / "answers-bad.jsonl", jsonl([{"uid": "u0", "model": "mine", "messages": [
        {"role": "user", "content": "q"}, {"role": "assistant", "content": {"answer": "a"}}]}]) + '{"uid": "u1",\n')
    add("arena_badq", arena_repo(f / "arena-badq", "v2.0", n=2))
    qfile = f / "arena-badq" / "data" / "arena-hard-v2.0" / "question.jsonl"
    first = qfile.read_text().splitlines()[0]
    qfile.write_text(first + "\n" + json.dumps({"uid": "u1", "category": "hard_prompt"}) + "\n")

    # finished work next to the inputs: it must come out of every case byte for byte as it went in
    state = world.state = root / "state"
    from stubs import StubEnv, stub_run

    stub_run(state / "finished", StubEnv(["p1", "p2", "p3"], ["s1", "s2"]), {"pi0": ["aa", "b", "ccc"]},
             {"aa": 1.0, "b": 0.0, "ccc": 2.0})
    run = state / "runs" / "tiny" / "iterative-dpo" / "seed-0"  # where `related` keeps that cell's run
    run.parent.mkdir(parents=True)
    (state / "finished" / "run").rename(run)
    (state / "finished").rmdir()
    world.paths.update(run=str(run), runs=str(state / "runs"))
    add("notes", state / "notes" / "todo.txt", "my notes, not a run\n")
    world.paths["notes"] = str(state / "notes")
    add("curve_done", state / "world-curve" / "results.json", json.dumps([{"iteration": 0, "gold_mean": 0.5}]))
    world.paths["curve_done"] = str(state / "world-curve")
    add("world_dir", state / "world" / "world.json", json.dumps({"digest": "000000000000"}))
    world.paths["world_dir"] = str(state / "world")
    add("corrupt_world", state / "corrupt-world" / "world.json", '{"digest": "0"\n"sizes": {}}\n')
    world.paths["corrupt_world"] = str(state / "corrupt-world")
    add("arena", arena_repo(state / "arena", "v2.0", n=2))
    add("arena_answers", state / "arena-answers.jsonl", jsonl(
        {"uid": f"u{i}", "model": "mine", "messages": [{"role": "user", "content": "q"},
                                                     {"role": "assistant", "content": {"answer": f"mine {i}"}}]}
        for i in range(2)))
    ae = add("ae_state", state / "alpaca")
    done = runner.invoke(app, ["bench", "alpaca-eval", "--data", world["ae_data"], "-o", f"outputs={world['ae_outputs']}",
                               "-o", "annotator=alpaca_eval_llama3_70b_fn", "--judge", f"openai:ok@{judge.url}",
                               "--out", str(ae), "--quiet"], env=world.env)
    assert done.exit_code == 0, done.output
    assert (ae / "judge_cache.jsonl").read_text().count("\n") == 3 and (ae / "results.json").exists()
    return world


# ------------------------------------------------------------------------------------------------ the corpus


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]  # {name} placeholders are the World's paths
    names: tuple[str, ...]  # what the error line must name
    absent: tuple[str, ...] = ()  # what it must not say (e.g. a judge that is not needed)
    usage: bool = False  # a command-line usage error, reported by typer (exit code 2, no traceback)
    env: tuple[tuple[str, str], ...] = ()  # environment variables of this case ({name} placeholders too)


def case(id: str, args: str, *names: str, absent: tuple[str, ...] = (), usage: bool = False,
         env: dict[str, str] | None = None) -> Case:
    return Case(id, tuple(args.split()), names, absent, usage, tuple((env or {}).items()))


HUB_DOWN = {"HF_HUB_OFFLINE": "0", "HF_DATASETS_OFFLINE": "0", "HF_ENDPOINT": "{hub_down}"}  # online, no hub


TRAIN = ("train --quiet --run-dir {out}/{id} --set run.env=prompts --set models.policy={policy} "
         "--set models.reward={reward} --set data.prompts={prompts} --set data.selection_size=1 "
         "--set data.num_parts=1 --set data.pm_parts=[1] --set data.rm_parts=[1] --set sampling.k=2 "
         "--set sampling.max_new_tokens=2 --set sampling.batch_size=4")
AE = "bench alpaca-eval --quiet --data {ae_data} -o outputs={ae_outputs} -o annotator=alpaca_eval_llama3_70b_fn"
ARENA = "bench arena-hard --quiet --data {arena} -o answers={arena_answers} -o version=v2.0"
SEAM = "seam --quiet --policy {policy} --reward {reward} --data {seam} --out {out}/{id} --source corrupt --k 2"
RB = "bench reward-bench --quiet --model {reward} --data {rb} --out {out}/{id}"
JUDGE = "--judge-retries 0 --judge-timeout 0.3"

CASES = [
    # ---- train: the config file
    case("train-config-missing", "train --config {out}/none.toml", "config file", "none.toml", "does not exist"),
    case("train-config-non-utf8", "train --config {nonutf8_toml}", "latin1.toml", "not UTF-8", "line 2"),
    case("train-config-binary", "train --config {binary_toml}", "binary.toml", "a binary file"),
    case("train-config-malformed", "train --config {bad_toml}", "bad.toml", "not valid TOML", "line 3"),
    case("train-config-folder", "train --config {dir}", "a-folder", "a folder, expected a file"),
    case("train-preset-malformed", "train --preset {bad_toml}", "bad.toml", "line 3"),
    case("train-unknown-key", "train --set estep.betta=1", "estep.betta"),
    case("train-bad-value", "train --set sampling.top_p=nan", "sampling.top_p"),
    case("train-unknown-method", "train --method nope", "unknown method 'nope'", "mutual-taught"),
    case("train-gold-control-without-gold", TRAIN + " --method mt-gold-labels", "mt-gold-labels",
         "needs an environment with a gold reward", "run.env=prompts has none"),
    case("train-oracle-without-gold", TRAIN + " --method mt-oracle-rm", "mstep.labels=gold",
         "needs an environment with a gold reward", "run.env=prompts has none"),
    # ---- train: the run directory
    case("train-run-dir-is-a-file", "train --run-dir {file}", "run directory", "a-file.txt", "is a file"),
    case("train-run-dir-under-a-file", "train --run-dir {file}/run", "a-file.txt is a file"),
    case("train-run-dir-not-a-run", "train --run-dir {notes}", "notes", "no config.json", "--run-dir"),
    case("train-run-dir-other-config", TRAIN.replace("{out}/{id}", "{run}"), "different config", "--run-dir"),
    # ---- train: the models
    case("train-policy-missing", TRAIN + " --set models.policy={missing_model}", "models.policy", "no-such-model",
         "no such folder"),
    case("train-policy-hub-offline", TRAIN + " --set models.policy=nobody/no-model", "models.policy",
         "nobody/no-model", "offline"),
    case("train-policy-is-a-reward-model", TRAIN + " --set models.policy={reward}", "models.policy",
         "LlamaForSequenceClassification", "not a causal LM"),
    case("train-reward-is-a-causal-lm", TRAIN + " --set models.reward={policy}", "models.reward",
         "LlamaForCausalLM", "not a reward model"),
    case("train-reward-without-tokenizer", TRAIN + " --set models.reward={no_tokenizer}", "no-tokenizer",
         "has no tokenizer"),
    case("train-policy-without-weights", TRAIN + " --set models.policy={no_weights}", "no-weights", "no weights"),
    case("train-policy-world-without-world", TRAIN + " --set models.policy=world", "models.policy", "run.env=world"),
    case("train-world-dir-is-a-file", "train --run-dir {out}/{id} --set world.dir={file}", "world.dir", "a-file.txt",
         "a file"),
    case("train-launcher-missing", TRAIN + " --launcher no-such-launcher", "--launcher", "no-such-launcher"),
    # ---- train: the prompts
    case("train-prompts-missing", TRAIN + " --set data.prompts={out}/none.jsonl", "data.prompts", "none.jsonl",
         "file not found"),
    case("train-prompts-folder", TRAIN + " --set data.prompts={dir}", "a-folder", "not a dataset saved"),
    case("train-prompts-empty", TRAIN + " --set data.prompts={empty_jsonl}", "stage data failed", "empty.jsonl",
         "no prompts", "Finished stages are kept in"),
    case("train-prompts-malformed-jsonl", TRAIN + " --set data.prompts={prompts_bad}", "prompts-bad.jsonl, line 2",
         "not valid JSON"),
    case("train-prompts-non-utf8", TRAIN + " --set data.prompts={nonutf8_jsonl}", "latin1.jsonl, line 2",
         "not UTF-8"),
    case("train-prompts-binary", TRAIN + " --set data.prompts={binary_jsonl}", "binary.jsonl, line 1"),
    case("train-prompts-malformed-csv", TRAIN + " --set data.prompts={prompts_csv}", "prompts.csv, line 3",
         "not valid CSV"),
    case("train-prompts-malformed-parquet", TRAIN + " --set data.prompts={prompts_parquet}", "prompts.parquet",
         "not a readable Parquet file"),
    case("train-prompts-missing-column", TRAIN + " --set data.prompts={prompts_nocol}", "prompts-nocol.jsonl, line 2",
         "no column 'prompt'", "data.prompt_column"),
    case("train-prompts-wrong-type", TRAIN + " --set data.prompts={prompts_int}", "prompts-int.jsonl, line 2",
         "'prompt' must be text"),
    case("train-prompts-hub-unreachable", TRAIN + " --set data.prompts=nobody/no-dataset", "nobody/no-dataset",
         "data.prompts", "unreachable", env=HUB_DOWN),
    case("train-prompts-hub-offline", TRAIN + " --set data.prompts=nobody/no-dataset", "nobody/no-dataset",
         "local .jsonl"),
    # ---- train: rewards that are not numbers, found in the stage that scores them
    case("train-nan-rewards", TRAIN + " --set models.reward={nan_rm}", "stage iter_1/estep_score failed",
         "nan-rm", "nan", "non-finite", "Finished stages are kept in"),
    # ---- show-config, methods
    case("show-config-non-utf8", "show-config --config {nonutf8_toml}", "latin1.toml", "not UTF-8"),
    case("show-config-unknown-method", "show-config --method sppo2", "unknown method 'sppo2'"),
    case("show-config-bad-method-option", "show-config --method sppo --set method.eta=-1", "method.eta"),
    case("methods-unknown-option", "methods --verbose", "--verbose", usage=True),
    # ---- world build | info | controls (each fails before a world is built)
    case("world-build-malformed-config", "world build --config {bad_toml}", "bad.toml", "line 3"),
    case("world-build-unknown-family", "world build --set world.dir={out}/{id} --set world.families=add,division",
         "world.families", "division"),
    case("world-build-dir-is-a-file", "world build --set world.dir={file}", "world.dir", "a-file.txt"),
    case("world-info-not-a-world", "world info --set world.dir={notes}", "notes", "no world.json"),
    case("world-info-other-world", "world info --set world.dir={world_dir}", "world", "other settings"),
    case("world-info-corrupt-manifest", "world info --set world.dir={corrupt_world}", "world.json",
         "invalid JSON at line 2"),
    case("world-controls-out-is-a-file", "world controls --out {file} --set world.dir={out}/{id}", "--out",
         "a-file.txt"),
    case("world-controls-out-is-finished", "world controls --out {curve_done} --set world.dir={out}/{id}", "--out",
         "world-curve", "results.json"),
    case("world-curve-unknown-labeller", "world curve oracle --set world.dir={out}/{id}", "labeller", "oracle",
         "gold"),
    case("world-curve-out-is-a-file", "world curve gold --out {file} --set world.dir={out}/{id}", "--out",
         "a-file.txt"),
    case("world-curve-out-is-finished", "world curve r0 --out {curve_done} --set world.dir={out}/{id}", "--out",
         "world-curve", "results.json"),
    case("world-probe-no-such-reward", "world probe --reward {out}/{id}/rm --set world.dir={out}/{id}", "--reward",
         "no such folder"),
    case("world-probe-out-is-a-folder", "world probe --out {notes} --set world.dir={out}/{id}", "--out", "a folder"),
    case("world-probe-out-exists", "world probe --out {file} --set world.dir={out}/{id}", "--out", "a-file.txt",
         "already exists"),
    # ---- tables (each fails before a cell trains)
    case("table1-unknown-recipe", "table1 --dry-run --preset nope", "unknown recipe 'nope'", "tiny"),
    case("table2-malformed-recipe", "table2 --dry-run --preset {bad_toml}", "recipe", "bad.toml", "line 3"),
    case("table3-non-utf8-recipe", "table3 --dry-run --preset {nonutf8_toml}", "latin1.toml", "not UTF-8"),
    case("tables-empty-recipe", "tables --dry-run --preset {empty_toml}", "empty.toml", "preset"),
    case("tables-recipe-is-a-folder", "tables --dry-run --preset {dir_toml}", "folder.toml", "a folder"),
    case("related-unknown-method", "related --dry-run --method rlp-xyz", "unknown method 'rlp-xyz'"),
    case("tables-unknown-key", "tables --dry-run --set estep.betta=1", "estep.betta"),
    case("tables-no-seeds", "tables --dry-run --seeds 0", "--seeds", usage=True),
    case("tables-no-jobs", "tables --dry-run --jobs 0", "--jobs", usage=True),
    case("tables-recipe-no-jobs", "tables --dry-run --preset {jobs_toml}", "no-jobs.toml", "jobs=0", "integer >= 1"),
    case("table1-out-is-a-file", "table1 --out {file} --runs {out}/{id}", "--out", "a-file.txt"),
    case("tables-runs-is-a-file", "tables --out {out}/{id} --runs {file}", "--runs", "a-file.txt"),
    case("related-cell-run-dir-other-config", "related --method iterative-dpo --seeds 1 --out {out}/{id} "
         "--runs {runs}", "seed-0", "different config"),
    # ---- headline (each fails before a cell trains)
    case("headline-no-headline-table", "headline --dry-run --preset paper", "recipe 'paper'", "no [headline] table"),
    case("headline-malformed-recipe", "headline --dry-run --preset {bad_toml}", "bad.toml", "line 3"),
    case("headline-wrong-type", "headline --dry-run --preset {headline_typed}", "headline-typed.toml",
         "seeds = 'many'", "an integer"),
    case("headline-unknown-variant", "headline --dry-run --preset {headline_toml} --variant b", "variant(s) b",
         "known: a"),
    case("headline-one-seed", "headline --dry-run --preset {headline_toml} --seeds 1", "--seeds", usage=True),
    case("headline-out-is-a-file", "headline --preset {headline_toml} --out {file} --runs {out}/{id}", "--out",
         "a-file.txt"),
    case("headline-runs-is-a-file", "headline --preset {headline_toml} --out {out}/{id} --runs {file}", "--runs",
         "a-file.txt"),
    # ---- seam
    case("seam-data-missing", SEAM.replace("{seam}", "{out}/none.jsonl"), "--data", "none.jsonl", "file not found"),
    case("seam-data-folder", SEAM.replace("{seam}", "{dir}"), "a-folder", "a folder"),
    case("seam-data-empty", SEAM.replace("{seam}", "{empty_jsonl}"), "empty.jsonl", "no rows"),
    case("seam-data-non-utf8", SEAM.replace("{seam}", "{seam_nonutf8}"), "seam-latin1.jsonl, line 2", "not UTF-8"),
    case("seam-data-malformed", SEAM.replace("{seam}", "{seam_bad}"), "seam-bad.jsonl, line 2", "JSON object"),
    case("seam-data-missing-column", SEAM.replace("{seam}", "{seam_nocol}"), "seam-nocol.jsonl, line 2", "'answer'"),
    case("seam-policy-missing", SEAM.replace("--policy {policy}", "--policy {missing_model}"), "--policy",
         "no-such-model"),
    case("seam-policy-is-a-reward-model", SEAM.replace("--policy {policy}", "--policy {reward}"), "--policy",
         "not a causal LM"),
    case("seam-reward-is-a-causal-lm", SEAM.replace("--reward {reward}", "--reward {policy}"), "--reward",
         "not a reward model"),
    case("seam-reward-hub-offline", SEAM.replace("--reward {reward}", "--reward nobody/rm"), "nobody/rm", "offline"),
    case("seam-reward-hub-unreachable", SEAM.replace("--reward {reward}", "--reward nobody/rm"), "nobody/rm",
         "unreachable", "local model folder", env=HUB_DOWN),
    case("seam-out-is-a-file", SEAM.replace("{out}/{id}", "{file}"), "--out", "a-file.txt"),
    case("seam-unknown-source", SEAM.replace("corrupt", "nonsense"), "nonsense"),
    case("seam-nan-rewards", SEAM.replace("--reward {reward}", "--reward {nan_rm}"), "nan-rm", "non-finite"),
    case("seam-inf-rewards", SEAM.replace("--reward {reward}", "--reward {inf_rm}"), "inf-rm", "inf", "non-finite"),
    # ---- bench reward-bench
    case("reward-bench-no-data-offline", "bench reward-bench --quiet --model {reward} --out {out}/{id}",
         "allenai/reward-bench", "pass --data FILE"),
    case("reward-bench-no-data-hub-unreachable", "bench reward-bench --quiet --model {reward} --out {out}/{id}",
         "allenai/reward-bench", "{hub_down} is unreachable", "pass --data FILE", env=HUB_DOWN),
    case("reward-bench-malformed-row", RB.replace("{rb}", "{rb_malformed}"), "rb-malformed.jsonl, line 3",
         "not valid JSON"),
    case("reward-bench-missing-column", RB.replace("{rb}", "{rb_missing}"), "rb-missing.jsonl, line 2",
         "missing rejected"),
    case("reward-bench-wrong-type", RB.replace("{rb}", "{rb_type}"), "rb-type.jsonl, line 1",
         "chosen should be a string"),
    case("reward-bench-data-non-utf8", RB.replace("{rb}", "{nonutf8_jsonl}"), "latin1.jsonl, line 2", "not UTF-8"),
    case("reward-bench-data-binary", RB.replace("{rb}", "{binary_jsonl}"), "binary.jsonl, line 1"),
    case("reward-bench-data-empty", RB.replace("{rb}", "{empty_jsonl}"), "empty.jsonl", "no rows"),
    case("reward-bench-data-folder", RB.replace("{rb}", "{dir}"), "a-folder", "a folder, expected a file"),
    case("reward-bench-malformed-parquet", RB.replace("{rb}", "{rb_parquet}"), "rb.parquet",
         "not a readable Parquet"),
    case("reward-bench-model-missing", RB.replace("{reward}", "{missing_model}"), "no-such-model", "no such folder"),
    case("reward-bench-model-is-a-file", RB.replace("{reward}", "{model_file}"), "config.json",
         "a file, not a model folder"),
    case("reward-bench-causal-lm", RB.replace("{reward}", "{policy}"), "LlamaForCausalLM", "not a reward model"),
    case("reward-bench-no-tokenizer", RB.replace("{reward}", "{no_tokenizer}"), "no-tokenizer", "no tokenizer"),
    case("reward-bench-nan-rewards", RB.replace("{reward}", "{nan_rm}"), "nan-rm", "nan", "non-finite"),
    case("reward-bench-inf-rewards", RB.replace("{reward}", "{inf_rm}"), "inf-rm", "inf", "non-finite"),
    case("reward-bench-out-is-a-file", RB.replace("{out}/{id}", "{file}"), "--out", "a-file.txt"),
    case("reward-bench-bad-option", RB + " -o version=3", "--option version=3", "1, 2"),
    # ---- bench alpaca-eval
    case("alpaca-eval-missing-model-before-hub", "bench alpaca-eval --model MISSING_DIR --data tatsu-lab/alpaca_eval "
         "--judge openai:ok@{judge} --out {out}/{id}", "MISSING_DIR", "no such folder", absent=("could not load",)),
    case("alpaca-eval-causal-lm-expected", "bench alpaca-eval --model {reward} --judge openai:ok@{judge} "
         "--out {out}/{id}", "LlamaForSequenceClassification", "not a causal LM"),
    case("alpaca-eval-model-hub-offline", "bench alpaca-eval --model nobody/llm --judge openai:ok@{judge} "
         "--out {out}/{id}", "nobody/llm", "offline"),
    case("alpaca-eval-data-hub-unreachable", "bench alpaca-eval --quiet --model {policy} --data tatsu-lab/alpaca_eval "
         "--judge openai:ok@{judge} --out {out}/{id}", "tatsu-lab/alpaca_eval", "unreachable", "--data",
         env=HUB_DOWN),
    case("alpaca-eval-no-judge", AE + " --out {out}/{id}", "needs a judge", "--judge openai:MODEL"),
    case("alpaca-eval-data-malformed-json", AE.replace("{ae_data}", "{ae_bad}") + " --judge openai:ok@{judge} "
         "--out {out}/{id}", "alpaca-bad.json", "line 3"),
    case("alpaca-eval-data-wrong-type", AE.replace("{ae_data}", "{ae_type}") + " --judge openai:ok@{judge} "
         "--out {out}/{id}", "alpaca-type.json, row 2", "'instruction'"),
    case("alpaca-eval-outputs-missing", AE.replace("{ae_outputs}", "{out}/none.json") + " --judge openai:ok@{judge} "
         "--out {out}/{id}", "outputs", "none.json", "file not found"),
    case("alpaca-eval-annotations-bad-preference", "bench alpaca-eval --data {ae_data} -o annotations={ann_bad} "
         "--out {out}/{id}",
         "annotations-bad.json, row 2", "'preference'", absent=("judge",)),
    case("alpaca-eval-annotations-unknown-instruction", "bench alpaca-eval --data {ae_data} "
         "-o annotations={ann_unknown} --out {out}/{id}", "annotations-unknown.json, row 1", "never asked"),
    case("alpaca-eval-annotations-non-utf8", "bench alpaca-eval -o annotations={ann_nonutf8} --out {out}/{id}",
         "annotations-latin1.json", "not UTF-8"),
    case("alpaca-eval-annotations-folder", "bench alpaca-eval -o annotations={dir} --out {out}/{id}", "a-folder",
         "a folder, expected a file"),
    case("alpaca-eval-out-is-a-file", AE + " --judge openai:ok@{judge} --out {file}", "--out", "a-file.txt"),
    # ---- bench alpaca-eval: judges that cannot be used, next to a finished result and its judge cache
    case("alpaca-eval-judge-unreachable", AE + f" {JUDGE} --judge openai:ok@{{nowhere}} --out {{ae_state}}",
         "judge http://127.0.0.1", "failed after 1 attempt", "Connection refused"),
    case("alpaca-eval-judge-timeout", AE + f" {JUDGE} --judge openai:slow@{{judge}} --out {{ae_state}}",
         "'slow'", "timed out", "--judge-timeout"),
    case("alpaca-eval-judge-5xx", AE + f" {JUDGE} --judge openai:down@{{judge}} --out {{ae_state}}",
         "'down'", "HTTP 503", "overloaded"),
    case("alpaca-eval-judge-401", AE + f" {JUDGE} --judge openai:locked@{{judge}} --out {{ae_state}}",
         "HTTP 401", "$OPENAI_API_KEY"),
    case("alpaca-eval-judge-not-json", AE + f" {JUDGE} --judge openai:garbage@{{judge}} --out {{ae_state}}",
         "'garbage'", "not a chat completion"),
    case("alpaca-eval-judge-no-choices", AE + f" {JUDGE} --judge openai:empty@{{judge}} --out {{ae_state}}",
         "'empty'", "not a chat completion"),
    case("alpaca-eval-judge-unparseable", AE + f" {JUDGE} --judge openai:unparseable@{{judge}} --out {{out}}/{{id}}",
         "none of the 3 judge answers parsed", "judge_cache.jsonl"),
    case("alpaca-eval-bad-judge-spec", AE + " --judge gpt4 --out {out}/{id}", "--judge 'gpt4'", "openai:MODEL"),
    # ---- bench arena-hard
    case("arena-hard-judgments-without-judge", "bench arena-hard -o judgments={judgments_bad} --out {out}/{id}",
         "judgments-bad.jsonl, line 2", "games", absent=("--judge",)),
    case("arena-hard-judgments-empty", "bench arena-hard -o judgments={empty_jsonl} --out {out}/{id}",
         "empty.jsonl", "no judgment lines"),
    case("arena-hard-judgments-non-utf8", "bench arena-hard -o judgments={judgments_nonutf8} --out {out}/{id}",
         "judgments-latin1.jsonl, line 2", "not UTF-8"),
    case("arena-hard-data-is-a-file", ARENA.replace("{arena}", "{file}") + " --judge openai:ok@{judge} "
         "--out {out}/{id}", "no question.jsonl", "a-file.txt"),
    case("arena-hard-question-missing-prompt", ARENA.replace("{arena}", "{arena_badq}") + " --judge openai:ok@{judge} "
         "--out {out}/{id}", "question.jsonl, line 2", "prompt"),
    case("arena-hard-answers-malformed", ARENA.replace("{arena_answers}", "{answers_bad}") + " --judge "
         "openai:ok@{judge} --out {out}/{id}", "answers-bad.jsonl, line 2", "not valid JSON"),
    case("arena-hard-judge-5xx", ARENA + f" {JUDGE} --judge openai:down@{{judge}} --out {{out}}/{{id}}", "HTTP 503"),
    case("arena-hard-judge-unparseable", ARENA + f" {JUDGE} --judge openai:unparseable@{{judge}} --out {{out}}/{{id}}",
         "none of the 4 verdicts", "judge_cache.jsonl"),
    case("arena-hard-model-missing", "bench arena-hard --model {missing_model} --judge openai:ok@{judge} "
         "--out {out}/{id}", "no-such-model", "no such folder"),
    # ---- bench list
    case("bench-list-unknown-option", "bench list --all", "--all", usage=True),
    case("bench-unknown-benchmark", "bench mt-bench --model x", "mt-bench", usage=True),
]


def test_the_corpus_covers_every_command():
    import typer.main
    from test_cli import commands

    covered = {tuple(w for w in c.args if not w.startswith(("-", "{")))[:2] for c in CASES}
    for path in commands(app):
        group = typer.main.get_command(app)
        for name in path:
            group = group.commands[name]
        if path and not getattr(group, "commands", None):
            assert any(tuple(path) == c[: len(path)] for c in covered), f"no bad-input case for {' '.join(path)}"


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_a_bad_input_is_one_line_naming_the_culprit(c: Case, w: World):
    args = [a.format(**w.paths, id=c.id) for a in c.args]
    before = tree_digest(w.state)
    env = {**w.env, **{k: v.format(**w.paths) for k, v in c.env}}
    result = runner.invoke(app, args, env=env)
    assert tree_digest(w.state) == before, "finished work next to the input was changed"
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    if c.usage:
        for name in c.names:
            assert name in result.stderr, result.output
        return
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for name in [n.format(**w.paths, id=c.id) for n in c.names]:
        assert name in lines[0], f"{name!r} not in: {lines[0]}"
    for name in c.absent:
        assert name not in lines[0], lines[0]


# The seven failures that issue 17 found by trying the commands as a new user would (the hub one both offline
# and unreachable).
REPORTED = ["train-config-non-utf8", "train-run-dir-is-a-file", "reward-bench-no-data-offline",
            "reward-bench-no-data-hub-unreachable", "reward-bench-malformed-row",
            "alpaca-eval-missing-model-before-hub", "arena-hard-judgments-without-judge",
            "alpaca-eval-annotations-bad-preference"]


def test_the_reported_cases_are_in_the_corpus():
    assert set(REPORTED) <= {c.id for c in CASES}


@pytest.mark.parametrize("how", ["flag", "env"])
def test_debug_prints_the_traceback_of_our_errors_too(how, tmp_path):
    args = ["--debug"] if how == "flag" else []
    result = runner.invoke(app, [*args, "show-config", "--config", str(tmp_path / "none.toml")],
                           env={"MT_REPRO_DEBUG": "1" if how == "env" else ""})
    assert result.exit_code == 2
    assert "Traceback" in result.stderr and "ConfigError" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1].startswith("error: config file")


def test_a_bug_is_not_dressed_as_a_user_error(monkeypatch):
    import reproduce.cli

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(reproduce.cli, "_load", broken)
    result = runner.invoke(app, ["show-config"])
    assert result.exit_code == 1 and isinstance(result.exception, RuntimeError)
    assert "error:" not in result.stderr  # uncaught: the interpreter prints its traceback, exit code 1

