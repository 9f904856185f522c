"""Prompt catalogs: CSV, JSONL or plain text in, a stream of validated rows out.

A catalog row is an optional id, the prompt, an optional seed and an optional number of
samples. Catalogs can hold many thousands of prompts, so ``read_catalog`` is a generator
that reads the file as it goes and never holds more than one row. A malformed row (a bad
seed, invalid UTF-8, broken JSON, ...) comes out as a row whose ``error`` says why, never as
an exception half-way through the file: the render stage reports it and goes on with the
rest. Only problems with the file as a whole (missing, unknown suffix, a CSV without a
``prompt`` column) raise.

Seeds. A row without a ``seed`` draws with ``stable_seed(id) + default_seed``: a 31-bit
number from a SHA-256 of its id (``row1``, ``row2``, ... when the catalog gives none), so
every row of a gallery shows its own noise draw, and the same id draws the same video on any
machine. ``default_seed`` ([render] seed, 0 by default) shifts every derived seed at once.
Sample k of a row uses its seed + k. ``typed_catalog`` writes prompts typed into a form as a
CSV catalog whose seeds derive from each prompt's own text, named by a digest of its content.

``output_name`` turns a row into a safe file stem. Ids come from users, so they may hold
``../``, absolute paths, NUL bytes or thousands of characters; the stem keeps only a short,
sanitised part of the id and adds a hash of the whole row, so no id can point outside the
output folder and two rows never share a file.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from t2v_core.store import atomic_write_bytes

SUFFIXES = (".csv", ".jsonl", ".txt")
KNOWN_KEYS = ("id", "prompt", "seed", "samples")
MAX_SEED = 2**62  # renders.parquet stores seed + sample as int64: leave headroom
ID_CHARS = 48  # the sanitised id kept in file names; the hash keeps them unique
HASH_CHARS = 12  # 48 bits: collisions among a million rows have odds of about 1 in 500,000
SEED_BITS = 31  # derived seeds fit a signed 32-bit int, what most RNG APIs take
TYPED_PREFIX = "typed-"  # ids of typed prompts, and the name of their catalog file


@dataclass(frozen=True)
class CatalogRow:
    row: int  # 1-based position among the catalog's rows (blank lines are not rows)
    id: str
    prompt: str
    seed: int
    samples: int
    error: str = ""  # non-empty: the row is rejected, and this is why


def read_catalog(
    path: Path,
    default_samples: int = 1,
    default_seed: int = 0,
    *,
    max_samples: int = 64,  # a row asking for more is rejected: it is almost surely a typo
    max_prompt_chars: int = 2000,  # longer prompts are rejected, as captions are at ingest
) -> Iterator[CatalogRow]:
    """Stream the rows of a ``.csv``, ``.jsonl`` or ``.txt`` catalog.

    CSV needs a header with a ``prompt`` column (``id``, ``seed``, ``samples`` optional;
    other columns are ignored). JSONL holds one object per line with the same keys. A
    ``.txt`` catalog is one prompt per line. Blank lines are skipped in every format. A row
    without a seed gets ``stable_seed(id) + default_seed`` (see the module docstring).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"prompt catalog not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"unknown catalog format {path.suffix!r} for {path}; use one of {SUFFIXES}")
    if default_samples < 1:
        raise ValueError(f"default_samples must be at least 1, got {default_samples}")
    if not 0 <= default_seed <= MAX_SEED:
        raise ValueError(f"default_seed must be in [0, {MAX_SEED}], got {default_seed}")
    records = {".csv": _csv_records, ".jsonl": _jsonl_records, ".txt": _txt_records}[suffix]
    # Ids must be unique: output names hash (id, prompt, sample), so a repeated id with the
    # same prompt would overwrite a video. Keeping the seen ids costs a few dozen bytes a row,
    # the only state that grows with the catalog.
    seen: dict[str, int] = {}
    for n, (where, fields, error) in enumerate(records(path), start=1):
        row = _make_row(n, where, fields, error, default_samples, default_seed, max_samples, max_prompt_chars)
        if not row.error:
            first = seen.setdefault(row.id, n)
            if first != n:
                row = _reject(row, f"duplicate id {row.id!r} (first used by row {first})")
        yield row


def stable_seed(text: str) -> int:
    """A seed in [0, 2**31) from ``text``: the first bytes of its SHA-256, the same on every
    machine and Python version (``hash()`` is salted per process, so it would not be)."""
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") % (1 << SEED_BITS)


def typed_catalog(prompts: Sequence[str], folder: Path) -> Path:
    """Prompts typed into a form -> a CSV catalog (id, prompt, seed) in ``folder``.

    Each item may hold several prompts, one a line (a pasted list); blank lines are dropped.
    A prompt's seed is ``stable_seed`` of its text, so the same words always draw the same
    video. The file is named by a digest of its content: typing the same prompts again gives
    the same path and bytes, hence the same render key, and the run is a cache hit.
    """
    texts = [line.strip() for item in prompts for line in str(item).splitlines()]
    texts = [t for t in texts if t]
    if not texts:
        raise ValueError("no prompts given: type at least one prompt, or give a catalog path")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["id", "prompt", "seed"])
    for n, text in enumerate(texts, start=1):
        writer.writerow([f"{TYPED_PREFIX}{n}", text, stable_seed(text)])
    # surrogatepass: a lone surrogate (JSON allows "\ud800") becomes bytes that the reader
    # rejects as invalid UTF-8 on its row, instead of an exception for the whole run
    data = buf.getvalue().encode("utf-8", "surrogatepass")
    path = Path(folder) / f"{TYPED_PREFIX}{hashlib.sha256(data).hexdigest()[:16]}.csv"
    if not path.is_file():  # content-addressed: an existing file already holds these bytes
        atomic_write_bytes(path, data)
    return path


def output_name(row_id: str, prompt: str, sample: int) -> str:
    """A file stem for one sample of a row: sanitised id + '-' + a hash of the whole row.

    Only ASCII letters, digits, '-' and '_' survive, so the stem has no path separator, no
    '.' (hence no '..') and no leading '-' that a shell tool could read as an option.
    """
    ascii_id = unicodedata.normalize("NFKD", row_id).encode("ascii", "ignore").decode()
    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", ascii_id)
    safe = safe.strip("-_")[:ID_CHARS].strip("-_") or "row"
    key = json.dumps([row_id, prompt, int(sample)], ensure_ascii=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:HASH_CHARS]
    return f"{safe}-{digest}"


# --- format readers: each yields (where, fields, error) per row, never raising mid-file ---

Record = tuple[str, dict[str, Any], str]


def _open_text(path: Path):
    # surrogateescape keeps undecodable bytes as lone surrogates instead of raising, so a
    # bad line is found and rejected on its own; utf-8-sig drops a BOM from Excel exports.
    return open(path, encoding="utf-8-sig", errors="surrogateescape", newline="")


def _txt_records(path: Path) -> Iterator[Record]:
    with _open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            text = line.strip()
            if text:
                yield f"line {lineno}", {"prompt": text}, "invalid UTF-8" if _has_bad_bytes(text) else ""


def _jsonl_records(path: Path) -> Iterator[Record]:
    with _open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            text = line.strip()
            if not text:
                continue
            where = f"line {lineno}"
            if _has_bad_bytes(text):
                yield where, {"prompt": text}, "invalid UTF-8"
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                yield where, {}, f"bad JSON: {exc.msg} at column {exc.colno}"
                continue
            if not isinstance(obj, dict):
                yield where, {}, f"a JSONL row must be an object, got {type(obj).__name__}"
                continue
            yield where, obj, ""


def _csv_records(path: Path) -> Iterator[Record]:
    with _open_text(path) as fh:
        reader = csv.reader(fh)
        header = _csv_header(path, reader)
        while True:
            start = reader.line_num + 1
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                # The reader resumes at the next record, so one broken record costs one row.
                yield f"line {start}", {}, f"malformed CSV: {exc}"
                continue
            if not any(v.strip() for v in values):
                continue  # a blank line, or a line of empty cells
            where = f"line {start}"
            fields = {k: v for k, v in zip(header, values) if k}
            if len(values) > len(header):
                # Usually an unquoted comma inside the prompt: rejecting beats guessing
                # which part was meant.
                yield where, fields, f"{len(values)} fields but the header has {len(header)} (quote prompts that contain commas)"
                continue
            if any(_has_bad_bytes(v) for v in values):
                yield where, fields, "invalid UTF-8"
                continue
            yield where, fields, ""


def _csv_header(path: Path, reader: Any) -> list[str]:
    try:
        raw = next(reader)
    except StopIteration:
        raise ValueError(f"CSV catalog {path} is empty: it needs a header with a 'prompt' column") from None
    except csv.Error as exc:
        raise ValueError(f"CSV catalog {path} has an unreadable header: {exc}") from None
    header = [h.strip().lower() for h in raw]
    if "prompt" not in header:
        raise ValueError(f"CSV catalog {path} has no 'prompt' column; header: {raw}")
    # Unknown columns (notes, tags, ...) are kept out; an empty name marks them.
    return [h if h in KNOWN_KEYS else "" for h in header]


# --- turning raw fields into a checked row ---


def _make_row(
    n: int,
    where: str,
    fields: dict[str, Any],
    error: str,
    default_samples: int,
    default_seed: int,
    max_samples: int,
    max_prompt_chars: int,
) -> CatalogRow:
    row_id = _clean_text(fields.get("id")) or f"row{n}"
    prompt = _clean_text(fields.get("prompt"))
    problems = [error] if error else []
    # No seed: one of the row's own (module docstring), not one draw shared by every row.
    seed, seed_err = _parse_int(fields.get("seed"), "seed", default_seed + stable_seed(row_id), 0, MAX_SEED)
    samples, samples_err = _parse_int(fields.get("samples"), "samples", default_samples, 1, max_samples)
    if not error:
        if "prompt" in fields and not isinstance(fields["prompt"], (str, type(None))):
            problems.append(f"prompt must be text, got {type(fields['prompt']).__name__}")
        elif not prompt:
            problems.append("empty prompt")
        elif len(prompt) > max_prompt_chars:
            problems.append(f"prompt longer than {max_prompt_chars} characters ({len(prompt)})")
        problems += [e for e in (seed_err, samples_err) if e]
    reason = f"{where}: {'; '.join(problems)}" if problems else ""
    return CatalogRow(row=n, id=row_id, prompt=prompt, seed=seed, samples=samples, error=reason)


def _reject(row: CatalogRow, reason: str) -> CatalogRow:
    return CatalogRow(row.row, row.id, row.prompt, row.seed, row.samples, error=reason)


def _clean_text(value: Any) -> str:
    """A field as text that pyarrow can store: undecodable bytes become U+FFFD."""
    if value is None:
        return ""
    # JSONL ids may be numbers; anything else non-textual is shown as its JSON.
    if isinstance(value, str):
        text = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        text = str(value)
    else:
        text = json.dumps(value)
    if _has_bad_bytes(text):
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return text.strip()


def _parse_int(value: Any, name: str, default: int, lo: int, hi: int) -> tuple[int, str]:
    """(value, "") or (default, reason). Blank means the default; bools and fractions are errors."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return default, ""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return default, f"{name} must be an integer, got {value!r}"
    try:
        number = int(value.strip()) if isinstance(value, str) else value
    except ValueError:
        return default, f"{name} must be an integer, got {_clean_text(value)!r}"
    if not lo <= number <= hi:
        return default, f"{name} must be in [{lo}, {hi}], got {number}"
    return number, ""


def _has_bad_bytes(text: str) -> bool:
    # surrogateescape maps each undecodable byte to U+DC80..U+DCFF
    return any("\udc80" <= ch <= "\udcff" for ch in text)
