"""Manifest adapters: every supported input format -> one validated corpus table.

Formats (IngestConfig.format, or "auto" by suffix and shape):

- generic CSV: a video column (``video_path``, ``video``, ``path`` or ``file``) and one or
  more caption columns (``caption``, ``caption_2``, ...); a video may also appear on several
  rows. Optional: ``caption_id``, ``video_id``, ``split``. Every other column rides along as
  an attribute (``colour``, ``digit_1``, ``scene`` ...), for a judge to read. One input row
  per (record, caption).
- generic JSONL: one object per line with the same keys; ``captions`` may be a list.
- MSR-VTT JSON: ``videos`` (``video_id``, optional ``split``) and ``sentences``
  (``video_id``, ``caption``, optional ``sen_id``) joined by video id; the files are
  ``<video_root>/<video_id>.<ext>``. One input row per sentence, plus one per video that has
  no sentence at all (rejected: a video without a caption cannot be a corpus row).
- WebVid CSV: ``videoid``, ``name`` (the caption), optional ``page_dir``; the files are
  ``<video_root>/<page_dir>/<videoid>.<ext>`` or ``<video_root>/<videoid>.<ext>``.
- folder: every video file under the folder with a sidecar ``<stem>.txt``, one caption per
  non-blank line. A video without a sidecar, or a sidecar without a video, is one rejected
  input row.

Relative paths resolve against the manifest's folder (``video_root`` for the id-based
formats when set). Rows keep manifest order. Every input row ends up either in the corpus
or in the rejects table with its reason: rows in = corpus rows + rejects rows.

Splits: a ``split`` of ``train``, ``val`` or ``test`` is kept (all captions of one video must
agree; a later row that puts the video on another side is rejected). A row without one is
placed by its video's content hash, in the shares of ``[ingest] split_shares``, so a video's
side never changes as the corpus grows. ``check_splits`` stops a corpus with too few videos
on a side.

Caption cleaning: control characters (Unicode category Cc: tabs, newlines, NUL, escape,
...) become spaces and the ends are stripped; emoji, format characters such as the
zero-width joiner, and every script go through unchanged.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from t2v_core.config import IngestConfig
from t2v_core.store import digest_file

CORPUS_SCHEMA = pa.schema(
    [
        ("caption_id", pa.string()),
        ("video_id", pa.string()),
        ("video_path", pa.string()),  # absolute
        ("video_sha256", pa.string()),  # content hash of the file: the frames stage's key
        ("caption", pa.string()),
        ("split", pa.string()),  # train | val | test
        ("attributes", pa.string()),  # JSON object of the manifest's other columns ("{}" if none)
        ("source_row", pa.int64()),  # 0-based record number in the manifest
    ]
)

REJECTS_SCHEMA = pa.schema(
    [
        ("source", pa.string()),  # the manifest (or sidecar file) the row came from
        ("row", pa.int64()),  # 0-based record number there; -1 when it has none
        ("caption_id", pa.string()),
        ("video_path", pa.string()),
        ("reason", pa.string()),
    ]
)

FORMATS = ("auto", "csv", "jsonl", "msrvtt", "webvid", "folder")
VIDEO_SUFFIXES = (".mp4", ".webm", ".avi", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg", ".ogv", ".flv", ".gif")
VIDEO_KEYS = ("video_path", "video", "path", "file")
SPLITS = ("train", "val", "test")
_SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validate": "val", "validation": "val", "test": "test"}
# Columns the adapters read themselves; every other column is an attribute.
_OWN_KEYS = frozenset({*VIDEO_KEYS, "video_id", "caption_id", "captions", "split"})


class CorpusError(ValueError):
    """A corpus that a stage cannot serve, said in one sentence (no traceback needed)."""


@dataclass
class RawRow:
    """One input row as an adapter reads it, before the shared validation."""

    source: str
    row: int
    video_id: str
    video_path: str  # absolute, or "" when the adapter could not name one
    caption: Any  # str normally; anything else is rejected with a reason
    caption_id: str = ""  # "" = generate f"{video_id}#{k}"
    split: str = ""
    attrs: dict[str, str] = field(default_factory=dict)
    error: str = ""  # set when the adapter already knows the row is bad


# ---------------------------------------------------------------------------- entry point


def read_manifest(path: Path, cfg: IngestConfig) -> tuple[pa.Table, pa.Table]:
    """Read any supported manifest into (corpus, rejects) tables (CORPUS_SCHEMA,
    REJECTS_SCHEMA). Bad rows become rejects with a reason; a manifest that cannot be read
    at all (missing, unknown format, no video column) is a clear error."""
    path = Path(path).resolve()
    if not path.exists():
        raise FileNotFoundError(f"manifest not found: {path}")
    fmt = detect_format(path) if cfg.format == "auto" else cfg.format
    if fmt not in FORMATS[1:]:
        raise ValueError(f"unknown manifest format {cfg.format!r}; expected one of {FORMATS}")
    root = Path(cfg.video_root).resolve() if cfg.video_root else (path if path.is_dir() else path.parent)
    adapter = {"csv": _read_csv, "jsonl": _read_jsonl, "msrvtt": _read_msrvtt,
               "webvid": _read_webvid, "folder": _read_folder}[fmt]  # fmt: skip
    return validate(adapter(path, root), cfg)


def side_of(video_sha256: str, shares: tuple[float, ...]) -> str:
    """The split of a video without one in its manifest: its content hash read as a
    uniform number in [0, 1), cut at the cumulative shares (train, val, test)."""
    u = int(video_sha256[:15], 16) / 16**15
    train, val = shares[0] / sum(shares), (shares[0] + shares[1]) / sum(shares)
    return "train" if u < train else ("val" if u < val else "test")


def check_splits(corpus: pa.Table, cfg: IngestConfig) -> dict[str, int]:
    """Videos per side; a side below ``min_split_videos`` stops the stage with a sentence."""
    sides = corpus.select(["video_sha256", "split"]).to_pandas().drop_duplicates("video_sha256")
    counts = {s: int((sides["split"] == s).sum()) for s in SPLITS}
    short = [s for s in SPLITS if counts[s] < cfg.min_split_videos]
    if short:
        have = ", ".join(f"{counts[s]} {s}" for s in SPLITS)
        raise CorpusError(
            f"the corpus has {have} video(s); every side needs at least {cfg.min_split_videos} "
            f"([ingest] min_split_videos) and {' and '.join(short)} fall short: add videos, or set "
            f"a split column in the manifest, or change [ingest] split_shares {list(cfg.split_shares)}")
    return counts


def detect_format(path: Path) -> str:
    """folder | msrvtt (.json) | webvid (.csv with videoid + name) | csv | jsonl."""
    if path.is_dir():
        return "folder"
    suffix = path.suffix.lower()
    if suffix == ".json":
        return "msrvtt"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix in (".csv", ".tsv"):
        sep = "\t" if suffix == ".tsv" else ","
        header = pd.read_csv(path, nrows=0, sep=sep, encoding="utf-8-sig", encoding_errors="replace")
        columns = {c.strip() for c in header.columns}
        return "webvid" if {"videoid", "name"} <= columns else "csv"
    raise ValueError(f"cannot tell the manifest format of {path.name!r} from its suffix; set [ingest] format")


# ---------------------------------------------------------------------------- validation


def validate(rows: Iterator[RawRow], cfg: IngestConfig) -> tuple[pa.Table, pa.Table]:
    """The checks every format shares: caption text, caption id uniqueness, the video file,
    its content hash. Keeps input order."""
    corpus: list[dict[str, Any]] = []
    rejects: list[dict[str, Any]] = []
    first_seen: dict[str, int] = {}  # caption_id -> row that holds it
    per_video: dict[str, int] = {}  # video_id -> captions numbered so far
    hashes: dict[str, str] = {}  # video path -> sha256, so a file is hashed once
    kept: list[tuple[RawRow, str, str]] = []  # (row, caption id, video sha256) that passed

    for r in rows:
        caption_id = r.caption_id
        if not caption_id and r.video_id:
            k = per_video.get(r.video_id, 0)
            per_video[r.video_id] = k + 1
            caption_id = f"{r.video_id}#{k}"
        reason = r.error or _caption_problem(r.caption, cfg)
        if not reason and caption_id in first_seen:
            reason = f"duplicate caption_id {caption_id!r} (first at row {first_seen[caption_id]})"
        if not reason:
            reason = _video_problem(r.video_path)
        if not reason and r.split and r.split.lower() not in _SPLIT_NAMES:
            reason = f"unknown split {r.split!r}; expected one of {list(SPLITS)} or blank"
        if reason:
            rejects.append(_reject(r, caption_id, reason))
            continue
        first_seen[caption_id] = r.row
        if r.video_path not in hashes:
            hashes[r.video_path] = digest_file(Path(r.video_path))
        kept.append((r, caption_id, hashes[r.video_path]))

    # A video's side: the first split its rows declare, else its content hash's. All its
    # captions go there; a row declaring another side is rejected.
    declared: dict[str, tuple[str, int]] = {}
    for r, _, sha in kept:
        if r.split:
            declared.setdefault(sha, (_SPLIT_NAMES[r.split.lower()], r.row))
    for r, caption_id, sha in kept:
        side, row = declared.get(sha, (side_of(sha, cfg.split_shares), -1))
        if r.split and _SPLIT_NAMES[r.split.lower()] != side:
            rejects.append(_reject(r, caption_id, f"the video is on the {side} side (row {row}), "
                                                  f"this row puts it on {_SPLIT_NAMES[r.split.lower()]}"))
            continue
        corpus.append({
            "caption_id": caption_id, "video_id": r.video_id, "video_path": r.video_path,
            "video_sha256": sha, "caption": clean_caption(r.caption), "split": side,
            "attributes": json.dumps(r.attrs, sort_keys=True, ensure_ascii=False),
            "source_row": r.row,
        })  # fmt: skip
    return (
        pa.Table.from_pylist(corpus, schema=CORPUS_SCHEMA),
        pa.Table.from_pylist(rejects, schema=REJECTS_SCHEMA),
    )


def _reject(r: RawRow, caption_id: str, reason: str) -> dict[str, Any]:
    return {"source": r.source, "row": r.row, "caption_id": caption_id, "video_path": r.video_path, "reason": reason}


def clean_caption(text: str) -> str:
    """Control characters -> spaces, ends stripped; everything printable is kept."""
    return "".join(" " if unicodedata.category(c) == "Cc" else c for c in text).strip()


def _caption_problem(caption: Any, cfg: IngestConfig) -> str:
    if caption is None or (isinstance(caption, float) and caption != caption):
        return "no caption"
    if not isinstance(caption, str):
        return f"caption is not text ({type(caption).__name__})"
    if _has_bad_utf8(caption):
        return "invalid UTF-8 in the caption"
    cleaned = clean_caption(caption)
    if not cleaned:
        return "empty caption (blank or whitespace only)"
    if len(cleaned) > cfg.max_caption_chars:
        return f"caption too long: {len(cleaned)} characters > max_caption_chars {cfg.max_caption_chars}"
    return ""


def _video_problem(video_path: str) -> str:
    if not video_path:
        return "no video path"
    p = Path(video_path)
    if not p.exists():
        return "video file not found"
    if not p.is_file():
        return "video path is not a file"
    return ""


def _has_bad_utf8(text: str) -> bool:
    # Files are decoded with errors="surrogateescape": each undecodable byte becomes a lone
    # surrogate, so a bad row can be told apart (and rejected) without losing the others.
    return any("\udc80" <= c <= "\udcff" for c in text)


def _resolve(value: str, base: Path) -> str:
    p = Path(value).expanduser()
    return str((p if p.is_absolute() else base / p).resolve())


def _find_video(root: Path, names: list[str]) -> str:
    """The first existing ``<root>/<name><suffix>`` over names and video suffixes."""
    for name in names:
        for suffix in VIDEO_SUFFIXES:
            candidate = root / f"{name}{suffix}"
            if candidate.is_file():
                return str(candidate.resolve())
    return str((root / f"{names[-1]}.mp4").resolve())  # named in the "not found" reject


def _text(value: Any) -> str:
    """A cell as text: missing (None / NaN) -> ""."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value).strip()


# ---------------------------------------------------------------------------- generic CSV / JSONL


def _caption_keys(keys: list[str]) -> list[str]:
    """caption, caption_2, caption3 ... in their column order."""
    out = []
    for k in keys:
        rest = k[len("caption") :].lstrip("_")
        if k.startswith("caption") and k != "caption_id" and (rest == "" or rest.isdigit()):
            out.append(k)
    return out


def _record_rows(rec: dict[str, Any], source: str, row: int, base: Path, caption_keys: list[str]) -> Iterator[RawRow]:
    """RawRows of one generic CSV / JSONL record: one per caption it holds."""
    video_key = next((k for k in VIDEO_KEYS if _text(rec.get(k))), None)
    video_path = _resolve(_text(rec[video_key]), base) if video_key else ""
    video_id = _text(rec.get("video_id")) or (Path(video_path).stem if video_path else "")
    attrs = {k: _text(v) for k, v in rec.items()
             if k not in _OWN_KEYS and k not in caption_keys and not isinstance(v, (list, dict))}
    common = {"source": source, "row": row, "video_id": video_id, "video_path": video_path,
              "split": _text(rec.get("split")), "attrs": attrs}  # fmt: skip
    error = "" if video_key else f"no video path (expected one of {list(VIDEO_KEYS)})"
    captions: list[Any] = []
    listed = rec.get("captions")
    if isinstance(listed, list):
        captions.extend(listed)
    elif listed is not None and _text(listed):
        captions.append(listed)
    # Extra columns caption_2, ... may be blank on rows with fewer captions; "caption" may not.
    for k in caption_keys:
        if k == "caption" or _text(rec.get(k)):
            captions.append(rec.get(k))
    if not captions:
        captions = [None]  # one reject row: "no caption"
    caption_id = _text(rec.get("caption_id")) if len(captions) == 1 else ""
    for caption in captions:
        yield RawRow(caption=caption, caption_id=caption_id, error=error, **common)


def _read_csv(path: Path, root: Path) -> Iterator[RawRow]:
    # Everything as text: ids like "007" must not become numbers, blanks must stay blank.
    # object, not str: Arrow-backed strings cannot hold the surrogates that mark bad bytes.
    frame = pd.read_csv(
        path, dtype=object, keep_default_na=False, encoding="utf-8-sig",
        encoding_errors="surrogateescape", sep="\t" if path.suffix.lower() == ".tsv" else ",",
    )  # fmt: skip
    frame.columns = [c.strip() for c in frame.columns]
    if not any(k in frame.columns for k in VIDEO_KEYS):
        raise ValueError(f"{path.name}: no video column; expected one of {list(VIDEO_KEYS)}, got {list(frame.columns)}")
    keys = _caption_keys(list(frame.columns))
    if not keys and "captions" not in frame.columns:
        raise ValueError(f"{path.name}: no caption column (caption, caption_2, ...); got {list(frame.columns)}")
    for i, rec in enumerate(frame.to_dict("records")):
        bad = [k for k, v in rec.items() if isinstance(v, str) and _has_bad_utf8(v)]
        rows = _record_rows(rec, str(path), i, root, keys)
        for r in rows:
            if bad:
                r.error = f"invalid UTF-8 in column(s) {bad}"
            yield r


def _read_jsonl(path: Path, root: Path) -> Iterator[RawRow]:
    text = path.read_bytes().decode("utf-8-sig", errors="surrogateescape")  # -sig: drop a BOM
    for i, line in enumerate(text.splitlines()):
        if not line.strip():
            continue  # blank lines are layout, not records
        if _has_bad_utf8(line):
            yield RawRow(str(path), i, "", "", None, error="invalid UTF-8 on this line")
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            yield RawRow(str(path), i, "", "", None, error=f"invalid JSON: {exc.msg} at column {exc.colno}")
            continue
        if not isinstance(rec, dict):
            yield RawRow(str(path), i, "", "", None, error=f"a line must hold a JSON object, got {type(rec).__name__}")
            continue
        yield from _record_rows(rec, str(path), i, root, _caption_keys(list(rec)))


# ---------------------------------------------------------------------------- MSR-VTT, WebVid


def _read_msrvtt(path: Path, root: Path) -> Iterator[RawRow]:
    data = json.loads(path.read_bytes().decode("utf-8-sig", errors="surrogateescape"))
    if not isinstance(data, dict) or not isinstance(data.get("sentences"), list):
        raise ValueError(f"{path.name}: an MSR-VTT manifest needs a 'sentences' list (and a 'videos' list)")
    videos: dict[str, dict[str, Any]] = {}
    for v in data.get("videos") or []:
        if isinstance(v, dict) and _text(v.get("video_id")):
            videos.setdefault(_text(v["video_id"]), v)
    captioned: set[str] = set()
    for i, s in enumerate(data["sentences"]):
        s = s if isinstance(s, dict) else {}
        video_id = _text(s.get("video_id"))
        captioned.add(video_id)
        meta = videos.get(video_id)
        given = _text((meta or {}).get("video_path") or (meta or {}).get("path"))
        video_path = _resolve(given, root) if given else (_find_video(root, [video_id]) if video_id else "")
        error = "" if meta is not None else f"video_id {video_id!r} is not in the 'videos' list"
        sen_id = s.get("sen_id")
        yield RawRow(str(path), i, video_id, video_path, s.get("caption"),
                     caption_id="" if sen_id is None else str(sen_id),
                     split=_text((meta or {}).get("split")), error=error)  # fmt: skip
    for j, (video_id, meta) in enumerate(videos.items()):
        if video_id not in captioned:
            yield RawRow(f"{path}:videos", j, video_id, _find_video(root, [video_id]), None,
                         error="video has no caption in 'sentences'")  # fmt: skip


def _read_webvid(path: Path, root: Path) -> Iterator[RawRow]:
    frame = pd.read_csv(path, dtype=object, keep_default_na=False, encoding="utf-8-sig", encoding_errors="surrogateescape")
    frame.columns = [c.strip() for c in frame.columns]
    for i, rec in enumerate(frame.to_dict("records")):
        video_id = _text(rec.get("videoid"))
        page_dir = _text(rec.get("page_dir"))
        folder = root / page_dir if page_dir else root
        video_path = _find_video(folder, [video_id]) if video_id else ""
        if page_dir and not Path(video_path).is_file():
            video_path = _find_video(root, [video_id])  # a flat download folder
        bad = [k for k, v in rec.items() if _has_bad_utf8(v)]
        error = f"invalid UTF-8 in column(s) {bad}" if bad else ("" if video_id else "no videoid")
        attrs = {k: _text(v) for k, v in rec.items() if k not in ("videoid", "name", "page_dir", "split")}
        yield RawRow(str(path), i, video_id, video_path, rec.get("name"), split=_text(rec.get("split")),
                     attrs=attrs, error=error)


# ---------------------------------------------------------------------------- folder


def _read_folder(path: Path, root: Path) -> Iterator[RawRow]:
    files = sorted(p for p in path.rglob("*") if p.is_file())
    videos = [p for p in files if p.suffix.lower() in VIDEO_SUFFIXES]
    stems = {p.with_suffix("") for p in videos}
    for i, video in enumerate(videos):
        video_id = video.relative_to(path).with_suffix("").as_posix()
        sidecar = video.with_suffix(".txt")
        base = {"source": str(sidecar), "video_id": video_id, "video_path": str(video.resolve())}
        if not sidecar.is_file():
            yield RawRow(row=i, caption=None, error="no sidecar caption file (.txt)", **base)
            continue
        text = sidecar.read_bytes().decode("utf-8-sig", errors="surrogateescape")
        lines = [line for line in text.splitlines() if line.strip()]
        if not lines:
            yield RawRow(row=i, caption="", **base)  # rejected as an empty caption
        for line in lines:
            yield RawRow(row=i, caption=line, **base)
    for txt in (p for p in files if p.suffix.lower() == ".txt" and p.with_suffix("") not in stems):
        yield RawRow(str(txt), -1, txt.stem, "", None, error="caption file has no video beside it")
