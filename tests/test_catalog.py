"""Prompt catalogs: the three formats, per-row rejects, and output names that stay put."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from t2v_core.catalog import CatalogRow, output_name, read_catalog, stable_seed, typed_catalog

REPO = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, name: str, data: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


# --------------------------------------------------------------------------- formats


def test_csv_optional_columns_defaults_and_extra_columns(tmp_path):
    path = write(tmp_path, "c.csv",
                 "Prompt,ID,seed,samples,notes\n"
                 "a red circle,r1,7,2,first\n"
                 '"a blue, large square",,,,"quoted comma"\n')
    rows = list(read_catalog(path, default_samples=3, default_seed=5))
    assert rows == [
        CatalogRow(row=1, id="r1", prompt="a red circle", seed=7, samples=2),
        # no seed: the row's own, from its id, shifted by the default seed
        CatalogRow(row=2, id="row2", prompt="a blue, large square", seed=5 + stable_seed("row2"), samples=3),
    ]


def test_csv_prompt_only_and_bom(tmp_path):
    path = write(tmp_path, "c.csv", "\ufeffprompt\nhello world\n\n  \nsecond one\n")
    rows = list(read_catalog(path))
    assert [(r.row, r.id, r.prompt, r.error) for r in rows] == [
        (1, "row1", "hello world", ""), (2, "row2", "second one", "")]


def test_jsonl_rows_and_blank_lines(tmp_path):
    lines = [{"prompt": "a cyan triangle", "id": 12, "seed": 3},
             {"prompt": "a white square", "samples": "2"}]
    path = write(tmp_path, "c.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n\n")
    rows = list(read_catalog(path))
    assert rows == [CatalogRow(1, "12", "a cyan triangle", 3, 1),
                    CatalogRow(2, "row2", "a white square", stable_seed("row2"), 2)]


def test_txt_one_prompt_per_line_blank_lines_are_not_rows(tmp_path):
    path = write(tmp_path, "c.txt", "first prompt\r\n\r\n   \nsecond prompt\n")
    rows = list(read_catalog(path, default_seed=9))
    assert [(r.row, r.id, r.prompt, r.seed) for r in rows] == [
        (1, "row1", "first prompt", 9 + stable_seed("row1")), (2, "row2", "second prompt", 9 + stable_seed("row2"))]


def test_shipped_catalogs_read_cleanly():
    demo = list(read_catalog(REPO / "data" / "catalogs" / "demo.csv"))
    assert 20 <= len(demo) <= 30
    bad = {r.id: r.error for r in demo if r.error}
    assert list(bad) == ["bad-empty-prompt"] and "empty prompt" in bad["bad-empty-prompt"]
    # the unknown-words row is well formed: only the model can reject it
    assert any(r.prompt == "zxqv blorf" and not r.error for r in demo)
    assert sum(r.id.startswith("heldout-") for r in demo) >= 5
    smoke = list(read_catalog(REPO / "data" / "catalogs" / "smoke.txt"))
    assert smoke and all(not r.error for r in smoke)
    for name in ("heldout.csv", "heldout-digits.csv", "heldout-shapes2.csv"):  # the README's examples
        rows = list(read_catalog(REPO / "data" / "catalogs" / name))
        assert len(rows) >= 3 and not [r.error for r in rows if r.error], name


# --------------------------------------------------------------------------- rejects


def test_malformed_rows_are_rejected_with_reasons_and_the_stream_goes_on(tmp_path):
    path = write(tmp_path, "c.csv",
                 b"id,prompt,seed,samples\n"
                 b"ok1,fine prompt,1,1\n"
                 b"s,bad seed,abc,1\n"
                 b"n,negative seed,-4,1\n"
                 b"z,zero samples,1,0\n"
                 b"f,fractional samples,1,1.5\n"
                 b"many,too many samples,1,1000\n"
                 b"e,,1,1\n"
                 b"u,caf\xe9 latin-1,1,1\n"
                 b"x,unquoted, comma,1,1\n"
                 b"ok2,last prompt,2,1\n")
    rows = list(read_catalog(path))
    assert len(rows) == 10  # every data row comes out, good or bad
    reasons = {r.id: r.error for r in rows}
    assert reasons["ok1"] == reasons["ok2"] == ""
    assert "seed must be an integer" in reasons["s"]
    assert "seed must be in" in reasons["n"]
    assert "samples must be in" in reasons["z"] and "samples must be in" in reasons["many"]
    assert "samples must be an integer" in reasons["f"]
    assert "empty prompt" in reasons["e"]
    assert "invalid UTF-8" in reasons["u"]
    assert "fields but the header has" in reasons["x"]
    assert reasons["s"].startswith("line 3:")  # reasons say where
    # an undecodable byte is shown, not carried: the prompt is valid text for Parquet
    assert next(r for r in rows if r.id == "u").prompt.encode("utf-8")


def test_jsonl_bad_lines_are_rows_with_errors(tmp_path):
    path = write(tmp_path, "c.jsonl",
                 b'{"prompt": "good"}\n'
                 b'{"prompt": "broken"\n'
                 b'["not", "an", "object"]\n'
                 b'{"prompt": "caf\xff"}\n'
                 b'{"prompt": "bool seed", "seed": true}\n'
                 b'{"prompt": ["list"]}\n'
                 b'{"prompt": "good too"}\n')
    rows = list(read_catalog(path))
    assert [r.row for r in rows] == [1, 2, 3, 4, 5, 6, 7]
    assert [bool(r.error) for r in rows] == [False, True, True, True, True, True, False]
    assert "bad JSON" in rows[1].error
    assert "object" in rows[2].error
    assert "invalid UTF-8" in rows[3].error
    assert "seed must be an integer" in rows[4].error
    assert "prompt must be text" in rows[5].error


def test_txt_invalid_utf8_line_is_one_rejected_row(tmp_path):
    path = write(tmp_path, "c.txt", b"one\n\xc3\x28 broken\nthree\n")
    rows = list(read_catalog(path))
    assert [bool(r.error) for r in rows] == [False, True, False]
    assert "line 2: invalid UTF-8" == rows[1].error


def test_oversized_csv_field_and_long_prompt_are_rejected(tmp_path):
    huge = "w " * 80_000  # 160 kB: past the csv module's default field limit
    path = write(tmp_path, "c.csv", f'prompt\n"{huge}"\nafter\n{"x" * 3000}\n')
    rows = list(read_catalog(path))
    assert len(rows) == 3
    assert "malformed CSV" in rows[0].error
    assert rows[1].prompt == "after" and not rows[1].error
    assert "longer than 2000" in rows[2].error


def test_duplicate_ids_are_rejected(tmp_path):
    path = write(tmp_path, "c.csv", "id,prompt\na,first\nb,second\na,first\nrow4,x\n")
    rows = list(read_catalog(path))
    assert [r.error for r in rows[:2]] == ["", ""]
    assert "duplicate id 'a' (first used by row 1)" in rows[2].error
    assert rows[3].error == ""


def test_whole_file_problems_raise(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        list(read_catalog(tmp_path / "missing.csv"))
    with pytest.raises(ValueError, match="unknown catalog format"):
        list(read_catalog(write(tmp_path, "c.xlsx", "prompt\nx\n")))
    with pytest.raises(ValueError, match="no 'prompt' column"):
        list(read_catalog(write(tmp_path, "c.csv", "id,text\n1,x\n")))
    with pytest.raises(ValueError, match="empty"):
        list(read_catalog(write(tmp_path, "e.csv", "")))


def test_reading_is_lazy(tmp_path):
    # A generator: nothing is read until asked, and a half-consumed stream is fine.
    path = write(tmp_path, "c.txt", "".join(f"prompt {i}\n" for i in range(10_000)))
    stream = read_catalog(path)
    first = next(stream)
    assert first.prompt == "prompt 0"
    stream.close()


# --------------------------------------------------------------------------- output names


HOSTILE_IDS = [
    "../../etc/x",
    "/etc/passwd",
    "C:\\Windows\\system32",
    "..",
    ".",
    "",
    "a/../../b",
    "-rf",
    "name\x00with-nul",
    "über-café",
    "🙂🙂",
    "x" * 5000,
]


@pytest.mark.parametrize("row_id", HOSTILE_IDS)
def test_output_name_never_leaves_the_folder(tmp_path, row_id):
    name = output_name(row_id, "a red circle", 0)
    assert "/" not in name and "\\" not in name and ".." not in name and "\x00" not in name
    assert set(name) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
    assert not name.startswith("-") and 0 < len(name) <= 64
    out = (tmp_path / "videos").resolve()
    out.mkdir()
    target = (out / f"{name}.webm").resolve()
    assert target.parent == out
    target.write_bytes(b"x")  # a real file system accepts it
    assert os.listdir(out) == [f"{name}.webm"]


def test_output_name_is_stable_and_distinguishes_rows():
    assert output_name("../../etc/x", "p", 0) == output_name("../../etc/x", "p", 0)
    names = {
        output_name("a/b", "p", 0),
        output_name("a_b", "p", 0),  # sanitises to the same text; the hash still differs
        output_name("a/b", "p", 1),
        output_name("a/b", "q", 0),
        output_name("x" * 5000, "p", 0),
        output_name("x" * 5001, "p", 0),  # same truncated id, different row
    }
    assert len(names) == 6
    assert output_name("heldout-red-triangle-left", "p", 0).startswith("heldout-red-triangle-left-")
    assert output_name("über", "p", 0).startswith("uber-")


# --------------------------------------------------------------------------- seeds


def test_rows_without_a_seed_get_their_own_derived_from_the_id(tmp_path):
    """Issue 26: not one noise draw for every row. Two rows without seeds get different
    seeds; the same id always the same seed, whatever the row's place or prompt; a given
    seed is kept."""
    first = write(tmp_path, "a.csv", "id,prompt,seed\nalpha,a red circle,\nbeta,a red circle,\ngamma,x,42\n")
    second = write(tmp_path, "b.jsonl", '{"id": "other", "prompt": "y"}\n{"id": "alpha", "prompt": "z"}\n')
    a = {r.id: r.seed for r in read_catalog(first)}
    b = {r.id: r.seed for r in read_catalog(second)}
    assert a["alpha"] != a["beta"] and a["gamma"] == 42
    assert b["alpha"] == a["alpha"] == stable_seed("alpha")  # same id, another file, row and prompt
    assert all(0 <= s < 2**31 for s in (*a.values(), *b.values()))
    # a fixed value, so a change of the derivation is a visible decision, not an accident
    assert stable_seed("alpha") == int.from_bytes(__import__("hashlib").sha256(b"alpha").digest()[:8], "big") % 2**31
    # .txt rows are ids row1, row2, ...: each its own seed too
    txt = [r.seed for r in read_catalog(write(tmp_path, "c.txt", "p\np\np\n"))]
    assert len(set(txt)) == 3


def test_typed_prompts_become_a_content_addressed_catalog(tmp_path):
    prompts = ["a red circle moves up", "  a blue, \"quoted\" square  ", "", "two\nlines"]
    path = typed_catalog(prompts, tmp_path / "catalogs")
    rows = list(read_catalog(path))
    assert [(r.id, r.prompt, r.error) for r in rows] == [
        ("typed-1", "a red circle moves up", ""), ("typed-2", 'a blue, "quoted" square', ""),
        ("typed-3", "two", ""), ("typed-4", "lines", "")]
    assert [r.seed for r in rows] == [stable_seed(r.prompt) for r in rows]  # from the text
    again = typed_catalog(list(prompts), tmp_path / "catalogs")
    assert again == path and again.read_bytes() == path.read_bytes()  # same prompts, same file
    assert typed_catalog(["another"], tmp_path / "catalogs") != path
    assert path.name.startswith("typed-") and path.suffix == ".csv"
    with pytest.raises(ValueError, match="no prompts"):
        typed_catalog(["", "  "], tmp_path / "catalogs")
