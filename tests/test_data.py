import json
import random

import pytest

from mt.data import load_prompts, part_for, prompt_id, split_prompts
from mt.records import InputError


def write(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def test_jsonl_prompts_strings_and_messages(tmp_path):
    f = write(tmp_path / "p.jsonl", [
        json.dumps({"prompt": "hello", "extra": 1}),
        json.dumps({"prompt": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}),
        json.dumps({"prompt": "hello", "extra": 2}),  # duplicate text -> same id, dropped
    ])
    rows = load_prompts(str(f))
    assert len(rows) == 2
    assert rows[0]["prompt"] == [{"role": "user", "content": "hello"}] and rows[0]["extra"] == 1
    assert rows[1]["prompt"] == [{"role": "user", "content": "hi"}]  # trailing answer cut


def test_malformed_row_names_file_and_line(tmp_path):
    f = write(tmp_path / "p.jsonl", [json.dumps({"prompt": "ok"}), "{not json", json.dumps({"prompt": "x"})])
    with pytest.raises(InputError, match=r"p\.jsonl, line 2: not valid JSON"):
        load_prompts(str(f))


def test_missing_column_names_columns(tmp_path):
    f = write(tmp_path / "p.jsonl", [json.dumps({"question": "ok"})])
    with pytest.raises(InputError, match=r"line 1: no column 'prompt' \(columns: question\)"):
        load_prompts(str(f))


def test_wrong_type_names_row(tmp_path):
    f = write(tmp_path / "p.jsonl", [json.dumps({"prompt": "a"}), json.dumps({"prompt": 5})])
    with pytest.raises(InputError, match=r"line 2: 'prompt' must be text or a list"):
        load_prompts(str(f))


def test_csv_and_json_sources(tmp_path):
    (tmp_path / "p.csv").write_text("prompt,id\nfirst,1\nsecond,2\n")
    rows = load_prompts(str(tmp_path / "p.csv"), id_column="id")
    assert [r["id"] for r in rows] == ["1", "2"]
    (tmp_path / "p.json").write_text(json.dumps([{"instruction": "a"}, {"instruction": "b"}]))
    assert len(load_prompts(str(tmp_path / "p.json"), prompt_column="instruction")) == 2
    with pytest.raises(InputError, match="missing.csv: file not found"):
        load_prompts(str(tmp_path / "missing.csv"))


def test_unreachable_hub_id_says_what_to_do():
    with pytest.raises(InputError, match="Point data.prompts at a local"):
        load_prompts("some-org/some-dataset-that-is-not-here")


def test_splits_are_disjoint_deterministic_and_sized():
    rows = [{"id": str(i), "prompt": [{"role": "user", "content": str(i)}]} for i in range(103)]
    a = split_prompts(rows, 3, 10, seed=1)
    b = split_prompts(rows, 3, 10, seed=1)
    assert a == b
    assert len(a["selection"]) == 10 and [len(a[f"part_{k}"]) for k in (1, 2, 3)] == [31, 31, 31]
    ids = [r["id"] for split in a.values() for r in split]
    assert len(ids) == len(set(ids))
    assert split_prompts(rows, 3, 10, seed=2) != a
    with pytest.raises(InputError, match="cannot fill"):
        split_prompts(rows[:5], 3, 10, seed=1)


def test_rotation_cycles_the_schedule():
    assert [part_for(t, [1, 2, 3]) for t in (1, 2, 3, 4)] == ["part_1", "part_2", "part_3", "part_1"]
    assert [part_for(t, [3, 1, 2]) for t in (1, 2, 3)] == ["part_3", "part_1", "part_2"]
    # PM and RM never share a part in the same iteration under the default schedule
    assert all(part_for(t, [1, 2, 3]) != part_for(t, [3, 1, 2]) for t in range(1, 10))


def test_prompt_id_is_a_16_hex_digest_of_the_messages_whatever_their_key_order():
    pid = prompt_id([{"role": "user", "content": "hi"}])
    assert len(pid) == 16 and int(pid, 16) >= 0
    assert prompt_id([{"content": "hi", "role": "user"}]) == pid != prompt_id([{"role": "user", "content": "ho"}])


def test_a_duplicate_is_skipped_and_reading_goes_on(tmp_path):
    f = write(tmp_path / "p.jsonl", [json.dumps({"prompt": p}) for p in ("a", "b", "a", "c")])
    assert [r["prompt"][0]["content"] for r in load_prompts(str(f))] == ["a", "b", "c"]


@pytest.mark.parametrize("value, message", [
    ("  ", r"line 1: 'prompt' is empty$"),
    ([{"role": "user", "content": 5}], r"line 1: 'prompt' must be text or a list of \{'role', 'content'\} chat "
                                       r"messages, got list \"\[\{'role': 'user', 'content': 5\}\]\"$"),
    ([{"role": 1, "content": "hi"}], r"line 1: 'prompt' must be text or a list"),
    ([{"role": "assistant", "content": "only an answer"}], r"line 1: 'prompt' must be text or a list"),
    (5, r"got int '5'$"),
    ({"x": "y" * 70}, r"got dict \"\{'x': '" + "y" * 53 + r"\"$"),  # the value is cut at 60 characters
])
def test_a_prompt_that_is_no_conversation_is_refused(tmp_path, value, message):
    f = write(tmp_path / "p.jsonl", [json.dumps({"prompt": value})])
    with pytest.raises(InputError, match=message):
        load_prompts(str(f))


def test_missing_columns_and_empty_sources_say_what_to_set(tmp_path):
    f = write(tmp_path / "p.jsonl", [json.dumps({"question": "ok", "answer": "x"})])
    with pytest.raises(InputError, match=r"line 1: no column 'prompt' \(columns: answer, question\); "
                                         r"set data.prompt_column$"):
        load_prompts(str(f))
    f = write(tmp_path / "q.jsonl", [json.dumps({"prompt": "ok"})])
    with pytest.raises(InputError, match=r"line 1: no id column 'uid'; set data.id_column or leave it unset$"):
        load_prompts(str(f), id_column="uid")
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(InputError, match=r"^" + str(tmp_path / "empty.jsonl") + ": no prompts found$"):
        load_prompts(str(tmp_path / "empty.jsonl"))
    (tmp_path / "empty.json").write_text("[]")
    with pytest.raises(InputError, match=r"^" + str(tmp_path / "empty.json") + ": no prompts found$"):
        load_prompts(str(tmp_path / "empty.json"))


def test_jsonl_rows_keep_their_own_ids(tmp_path):
    f = write(tmp_path / "p.jsonl", [json.dumps({"prompt": "a", "uid": 7}), json.dumps({"prompt": "b", "uid": "x"})])
    assert [r["id"] for r in load_prompts(str(f), id_column="uid")] == ["7", "x"]


def test_json_files_are_checked_and_their_rows_named(tmp_path):
    (tmp_path / "bad.json").write_text('[{"prompt": "a"},\n oops]')
    with pytest.raises(InputError, match=r"bad\.json: invalid JSON at line 2, column 2: Expecting value$"):
        load_prompts(str(tmp_path / "bad.json"))
    for content in ('{"prompt": "a"}', '[1, 2]', '[{"prompt": "a"}, "b"]'):
        (tmp_path / "shape.json").write_text(content)
        with pytest.raises(InputError, match=r"shape\.json: expected a JSON list of objects \(one per prompt\)$"):
            load_prompts(str(tmp_path / "shape.json"))
    (tmp_path / "rows.json").write_text(json.dumps([{"prompt": "a"}, {"prompt": 5}]))
    with pytest.raises(InputError, match=r"rows\.json, row 2: 'prompt' must be text"):
        load_prompts(str(tmp_path / "rows.json"))


def test_a_saved_dataset_folder_is_read_with_its_split(tmp_path):
    import datasets

    one = datasets.Dataset.from_list([{"prompt": "a"}, {"prompt": "b"}])
    one.save_to_disk(str(tmp_path / "one"))
    assert [r["prompt"][0]["content"] for r in load_prompts(str(tmp_path / "one"))] == ["a", "b"]
    splits = datasets.DatasetDict({"train": one, "test_prefs": datasets.Dataset.from_list([{"prompt": "c"}])})
    splits.save_to_disk(str(tmp_path / "splits"))
    assert [r["prompt"][0]["content"] for r in load_prompts(str(tmp_path / "splits"))] == ["a", "b"]
    assert [r["prompt"][0]["content"]
            for r in load_prompts(str(tmp_path / "splits"), hub_split="test_prefs")] == ["c"]


def test_a_hub_id_is_loaded_with_its_split_and_a_failure_names_the_cause(monkeypatch):
    import datasets

    asked = []

    def load_dataset(name, split):
        asked.append((name, split))
        if name == "org/down":
            raise ConnectionError("no route")
        return [{"prompt": "a"}, {"prompt": 5}]

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    with pytest.raises(InputError, match=r"^org/set, row 2: 'prompt' must be text"):
        load_prompts("org/set")
    with pytest.raises(InputError, match=r"^could not load prompts 'org/down' \(split 'test'\) from the Hugging Face "
                                         r"hub: ConnectionError: no route\. Offline\? Point data\.prompts at a local "
                                         r"\.jsonl/\.json/\.csv/\.parquet file or a saved dataset folder\.$"):
        load_prompts("org/down", hub_split="test")
    assert asked == [("org/set", "train"), ("org/down", "test")]


def test_splits_cut_at_max_prompts_and_need_one_prompt_per_part_beyond_the_selection():
    rows = [{"id": str(i), "prompt": [{"role": "user", "content": str(i)}]} for i in range(40)]
    cut = split_prompts(rows, 2, 4, seed=1, max_prompts=20)
    assert len(cut["selection"]) == 4 and [len(cut[p]) for p in ("part_1", "part_2")] == [8, 8]
    shuffled = list(rows)
    random.Random(1).shuffle(shuffled)
    assert [r["id"] for s in cut.values() for r in s] == [r["id"] for r in shuffled[:20]]
    tight = split_prompts(rows[:13], 3, 10, seed=1)  # exactly enough: one prompt per part
    assert [len(tight[f"part_{k}"]) for k in (1, 2, 3)] == [1, 1, 1]
    with pytest.raises(InputError, match=r"^12 prompts cannot fill a selection set of 10 and 3 non-empty parts; "
                                         r"lower data.selection_size or give more prompts$"):
        split_prompts(rows[:12], 3, 10, seed=1)
