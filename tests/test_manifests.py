"""Manifest adapters: every format maps to the one corpus schema; bad rows become rejects."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from t2v_core.config import IngestConfig
from t2v_core.corpus.manifests import (
    CORPUS_SCHEMA,
    REJECTS_SCHEMA,
    CorpusError,
    check_splits,
    detect_format,
    read_manifest,
    side_of,
)
from t2v_core.store import digest_file
from t2v_core.writers import write_video


def clip(tmp: Path, rel: str, level: int = 0) -> Path:
    frames = np.full((3, 16, 16, 3), level, np.uint8)
    return write_video(tmp / rel, frames, 8)


def read(path: Path, **kw) -> tuple[list[dict], list[dict]]:
    corpus, rejects = read_manifest(path, IngestConfig(**kw))
    assert corpus.schema == CORPUS_SCHEMA and rejects.schema == REJECTS_SCHEMA
    return corpus.to_pylist(), rejects.to_pylist()


def test_generic_csv_resolves_paths_numbers_captions_and_keeps_order(tmp_path):
    a = clip(tmp_path, "clips/a.mp4", 10)
    b = clip(tmp_path, "clips/b.webm", 20)
    (tmp_path / "m.csv").write_text(
        "video_path,caption,caption_2,colour,split\n"
        "clips/a.mp4,a red thing,,red,test\n"
        "clips/b.webm,first,second,,\n"
        f"{a},a again,,,\n"
    )
    corpus, rejects = read(tmp_path / "m.csv")
    assert rejects == []
    assert [r["caption_id"] for r in corpus] == ["a#0", "b#0", "b#1", "a#1"]
    assert [r["source_row"] for r in corpus] == [0, 1, 1, 2]
    assert corpus[0]["video_path"] == str(a.resolve()) and corpus[1]["video_path"] == str(b.resolve())
    assert corpus[0]["video_sha256"] == digest_file(a) == corpus[3]["video_sha256"]
    # other columns ride along as attributes; a video without a split follows its row with one
    assert [json.loads(r["attributes"]) for r in corpus] == [{"colour": "red"}, {"colour": ""}, {"colour": ""},
                                                              {"colour": ""}]
    assert [corpus[0]["split"], corpus[3]["split"]] == ["test", "test"]
    assert corpus[1]["split"] == side_of(corpus[1]["video_sha256"], (0.8, 0.1, 0.1)) == corpus[2]["split"]


def test_bad_rows_are_rejects_with_reasons_and_nothing_is_dropped(tmp_path):
    clip(tmp_path, "a.mp4")
    rows = [
        b"a.mp4,ok one,c1",
        b"a.mp4,bad \xff\xfe bytes,c2",
        b"a.mp4,   ,c3",
        b"a.mp4," + b"x" * 50 + b",c4",
        b"gone.mp4,no file,c5",
        b"a.mp4,dup id,c1",
        "a.mp4,\"tab\there\x07 \U0001F600 \u65e5\u672c\u8a9e \u0645\u0631\u062d\u0628\u0627 \U0001F469\u200d\U0001F4BB\",c6".encode(),
    ]
    (tmp_path / "m.csv").write_bytes(b"video_path,caption,caption_id\n" + b"\n".join(rows) + b"\n")
    corpus, rejects = read(tmp_path / "m.csv", max_caption_chars=40)
    assert len(corpus) + len(rejects) == len(rows)
    reasons = {r["caption_id"]: r["reason"] for r in rejects}
    assert "invalid UTF-8" in reasons["c2"]
    assert "empty caption" in reasons["c3"]
    assert "too long" in reasons["c4"]
    assert reasons["c5"] == "video file not found"
    assert "duplicate caption_id 'c1'" in reasons["c1"]
    assert [r["row"] for r in rejects] == [1, 2, 3, 4, 5]
    kept = {r["caption_id"]: r["caption"] for r in corpus}
    # Control characters become spaces; emoji (with a zero-width joiner) and scripts stay.
    assert kept == {"c1": "ok one", "c6": "tab here  \U0001F600 \u65e5\u672c\u8a9e \u0645\u0631\u062d\u0628\u0627 \U0001F469\u200d\U0001F4BB"}


def test_jsonl_with_caption_lists_and_broken_lines(tmp_path):
    clip(tmp_path, "v/a.avi")
    lines = [
        json.dumps({"video": "v/a.avi", "captions": ["one", "two"], "split": "val"}).encode(),
        b"",  # blank lines are layout, not rows
        b"{not json",
        json.dumps({"video": "v/a.avi", "caption": "caf\u00e9", "caption_id": "x"}).encode(),
        b'{"video": "v/a.avi", "caption": "bad \xc3\x28"}',
        json.dumps({"caption": "no video"}).encode(),
    ]
    (tmp_path / "m.jsonl").write_bytes(b"\n".join(lines))
    corpus, rejects = read(tmp_path / "m.jsonl")
    assert [(r["caption_id"], r["caption"], r["split"]) for r in corpus] == [
        ("a#0", "one", "val"), ("a#1", "two", "val"), ("x", "caf\u00e9", "val")]  # fmt: skip
    assert [(r["row"], r["reason"].split(":")[0]) for r in rejects] == [
        (2, "invalid JSON"), (4, "invalid UTF-8 on this line"), (5, "no video path (expected one of ['video_path', 'video', 'path', 'file'])")]  # fmt: skip


def test_msrvtt_joins_sentences_to_videos(tmp_path):
    clip(tmp_path, "TrainValVideo/video0.mp4")
    clip(tmp_path, "TrainValVideo/video1.webm", 50)
    clip(tmp_path, "TrainValVideo/video2.mp4")
    data = {
        "videos": [{"video_id": "video0", "split": "train"}, {"video_id": "video1", "split": "validate"},
                   {"video_id": "video2", "split": "test"}],
        "sentences": [{"video_id": "video0", "caption": "a man sings", "sen_id": 0},
                      {"video_id": "video1", "caption": "a cat", "sen_id": 1},
                      {"video_id": "video0", "caption": "someone is singing", "sen_id": 2},
                      {"video_id": "video9", "caption": "orphan", "sen_id": 3}],
    }  # fmt: skip
    (tmp_path / "videodatainfo.json").write_text(json.dumps(data))
    corpus, rejects = read(tmp_path / "videodatainfo.json", video_root=str(tmp_path / "TrainValVideo"))
    assert [(r["caption_id"], r["video_id"], r["split"]) for r in corpus] == [
        ("0", "video0", "train"), ("1", "video1", "val"), ("2", "video0", "train")]  # fmt: skip
    assert corpus[1]["video_path"].endswith("video1.webm")
    assert corpus[0]["video_sha256"] == corpus[2]["video_sha256"]  # one video, many captions
    assert ["not in the 'videos' list" in rejects[0]["reason"], rejects[1]["reason"]] == [
        True, "video has no caption in 'sentences'"]  # fmt: skip
    assert len(corpus) + len(rejects) == len(data["sentences"]) + 1  # + the caption-less video2


def test_webvid_csv_finds_videos_in_page_dirs_or_flat(tmp_path):
    clip(tmp_path, "vids/000001_000050/1066.mp4")
    clip(tmp_path, "vids/2077.mp4", 30)
    (tmp_path / "results_2M_val.csv").write_text(
        "videoid,contentUrl,duration,page_dir,name\n"
        "1066,http://x/1066.mp4,PT00H00M10S,000001_000050,Aerial shot of a coast\n"
        "2077,http://x/2077.mp4,PT00H00M10S,000001_000050,A dog runs\n"
        "3088,http://x/3088.mp4,PT00H00M10S,000001_000050,Not downloaded\n"
    )
    path = tmp_path / "results_2M_val.csv"
    assert detect_format(path) == "webvid"
    corpus, rejects = read(path, video_root=str(tmp_path / "vids"))
    assert [(r["caption_id"], r["caption"]) for r in corpus] == [("1066#0", "Aerial shot of a coast"), ("2077#0", "A dog runs")]
    assert [(r["row"], r["reason"]) for r in rejects] == [(2, "video file not found")]


def test_folder_with_sidecar_captions(tmp_path):
    root = tmp_path / "videos"
    clip(root, "a.mp4")
    (root / "a.txt").write_text("a cat jumps\n\nthe cat leaps\n")
    clip(root, "sub/b.avi")
    (root / "sub" / "b.txt").write_text("\u4e00\u53ea\u72d7")
    clip(root, "c.webm")  # no sidecar
    (root / "d.txt").write_text("a caption without a video")
    (root / "e.mp4").write_bytes(b"")  # extraction rejects it; ingest only checks that it exists
    (root / "e.txt").write_text("   \n")
    assert detect_format(root) == "folder"
    corpus, rejects = read(root)
    assert [(r["caption_id"], r["caption"]) for r in corpus] == [
        ("a#0", "a cat jumps"), ("a#1", "the cat leaps"), ("sub/b#0", "\u4e00\u53ea\u72d7")]  # fmt: skip
    assert sorted(r["reason"] for r in rejects) == [
        "caption file has no video beside it", "empty caption (blank or whitespace only)",
        "no sidecar caption file (.txt)"]  # fmt: skip


def test_unreadable_manifests_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_manifest(tmp_path / "none.csv", IngestConfig())
    (tmp_path / "m.csv").write_text("clip,text\nx.mp4,hi\n")
    with pytest.raises(ValueError, match="no video column"):
        read_manifest(tmp_path / "m.csv", IngestConfig())
    (tmp_path / "m.xml").write_text("<x/>")
    with pytest.raises(ValueError, match="set \\[ingest\\] format"):
        read_manifest(tmp_path / "m.xml", IngestConfig())


def test_splits_by_content_hash_stay_put_as_the_corpus_grows(tmp_path):
    """Rows without a split are placed by their video's content hash in the configured
    shares: the same video is on the same side in a grown corpus, and every caption of a
    video is on one side."""
    paths = [clip(tmp_path, f"v/{i:03d}.avi", i) for i in range(60)]
    lines = ["video_path,caption,caption_2"] + [f"{p.name and 'v/' + p.name},clip {i},again {i}" for i, p in enumerate(paths)]
    (tmp_path / "small.csv").write_text("\n".join(lines[:31]) + "\n")
    (tmp_path / "grown.csv").write_text("\n".join(lines) + "\n")
    small, _ = read(tmp_path / "small.csv")
    grown, rejects = read(tmp_path / "grown.csv")
    assert rejects == [] and len(grown) == 120
    side = {r["video_sha256"]: r["split"] for r in grown}
    assert all(side[r["video_sha256"]] == r["split"] for r in small)  # no video moved
    assert all(r["split"] == side[r["video_sha256"]] for r in grown)  # one side per video
    counts = {s: sum(v == s for v in side.values()) for s in ("train", "val", "test")}
    assert counts["train"] > counts["val"] > 0 and counts["test"] > 0, counts
    # All on one side when the shares say so.
    only, _ = read(tmp_path / "grown.csv", split_shares=(0.0, 0.0, 1.0))
    assert {r["split"] for r in only} == {"test"}


def test_conflicting_sides_are_rejected_and_short_sides_stop_ingest(tmp_path):
    clip(tmp_path, "a.avi", 1)
    clip(tmp_path, "b.avi", 2)
    (tmp_path / "m.csv").write_text("video_path,caption,split\na.avi,one,train\na.avi,two,test\n"
                                    "b.avi,three,valid\nb.avi,four,holdout\n")
    corpus, rejects = read(tmp_path / "m.csv")
    assert [(r["caption"], r["split"]) for r in corpus] == [("one", "train"), ("three", "val")]
    assert sorted(r["reason"].split(";")[0].split(" (")[0] for r in rejects) == [
        "the video is on the train side", "unknown split 'holdout'"]
    table, _ = read_manifest(tmp_path / "m.csv", IngestConfig())
    with pytest.raises(CorpusError, match=r"1 train, 1 val, 0 test video\(s\); every side needs at least 2"):
        check_splits(table, IngestConfig())
    assert check_splits(table, IngestConfig(min_split_videos=0)) == {"train": 1, "val": 1, "test": 0}
