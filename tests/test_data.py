import json

import pytest

from mt.data import load_prompts, part_for, split_prompts
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
