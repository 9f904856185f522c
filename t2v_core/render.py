"""Batch rendering: a prompt catalog -> videos, renders.parquet and a gallery.

``render_catalog`` streams the catalog (t2v_core.catalog), asks a ``GenerateFn`` for a batch
of clips at a time, writes each sample as WebM and/or GIF under ``videos/``, and appends one
table row per sample to ``renders.parquet`` as it goes. Memory stays flat in the number of
rows: at most one batch of clips and one Parquet row group are held at once, and the gallery
pages are built afterwards by streaming the table back.

Statuses: ``ok`` (written), ``rejected`` (the catalog row was malformed, or the generator
refused the prompt: an empty prompt, no known words) and ``failed`` (the generator or a
writer raised). Rows in = ok + rejected + failed, counted per catalog row; a row with
several samples takes the worst status of its samples.

Unknown words: the ``unknown_words`` column lists the prompt's words that the encoder maps to
its unknown token, in the token form the model reads; the video was drawn without them (a
prompt of nothing else is rejected). ``with_unknown_words`` counts such rows, a warning is
logged, and the gallery shows them. A copy of the catalog goes beside the gallery.

``make_generate_fn`` binds a trained t2v_core.generate.Text2Video to the GenerateFn shape.
"""

from __future__ import annotations

import html
import logging
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from t2v_core.catalog import CatalogRow, output_name, read_catalog
from t2v_core.config import RenderConfig
from t2v_core.embeddings import UNK_ID
from t2v_core.store import atomic_path, atomic_write_text
from t2v_core.writers import write_gif, write_video


@dataclass(frozen=True)
class Generated:
    """One prompt's result when a bare clip (ok) or reason string (refused) says too little."""

    clip: np.ndarray | None  # uint8 (T, H, W, 3); None: refused, and ``reason`` says why
    reason: str = ""
    unknown_words: tuple[str, ...] = ()  # the prompt's words the model does not know


GenerateFn = Callable[[list[str], list[int]], list[np.ndarray | str | Generated]]
Progress = Callable[[int, int | None], None]
log = logging.getLogger(__name__)

FORMATS = ("webm", "gif")
TABLE = "renders.parquet"
GALLERY = "index.html"
VIDEOS = "videos"
ROW_GROUP = 4096  # table rows buffered before a Parquet row group is written
SEVERITY = {"ok": 0, "rejected": 1, "failed": 2}  # a row's status is its worst sample's

SCHEMA = pa.schema([
    ("row", pa.int64()),  # 1-based catalog row
    ("id", pa.string()),
    ("prompt", pa.string()),
    ("seed", pa.int64()),  # the seed this sample was drawn with: row seed + sample
    ("sample", pa.int32()),
    ("status", pa.string()),  # ok | rejected | failed
    ("reason", pa.string()),  # empty when ok
    ("unknown_words", pa.list_(pa.string())),  # words the encoder maps to <unk>; [] when none
    ("webm", pa.string()),  # path relative to out_dir; null when not written
    ("gif", pa.string()),
])


def render_catalog(
    catalog: Path,
    out_dir: Path,
    generate_fn: GenerateFn,
    cfg: RenderConfig,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Render every row of ``catalog`` into ``out_dir``; see the module docstring.

    ``progress(done_rows, total_rows)`` is called at the start, after each batch and at the
    end. Returns the counts (rows, ok, rejected, failed, videos, with_unknown_words), the
    gallery's and table's relative paths, the gallery pages, and a bounded preview of the
    table (the first rows, and the first problem rows) for a flow's table artifact.
    """
    _check_config(cfg)
    catalog, out_dir = Path(catalog), Path(out_dir)
    (out_dir / VIDEOS).mkdir(parents=True, exist_ok=True)

    def rows() -> Iterator[CatalogRow]:
        return read_catalog(catalog, cfg.samples, cfg.seed, max_samples=cfg.max_samples)

    # A cheap first pass (parsing only) so progress can show a fraction, not just a count.
    total = sum(1 for _ in rows())
    tally = _Tally(total, progress)
    tally.report()
    with atomic_path(out_dir / TABLE) as tmp:
        with _TableWriter(tmp) as table:
            pending: list[_Item] = []
            for row in rows():
                pending += [_Item(row, k, row.seed + k) for k in range(1 if row.error else row.samples)]
                # Rejected rows wait in `pending` too, so the table stays in catalog order;
                # counting them in the flush size keeps a long run of them from piling up.
                # `while`, not `if`: a row may bring more samples than one batch holds.
                while len(pending) >= cfg.batch_size:
                    _flush(pending[: cfg.batch_size], generate_fn, out_dir, cfg, table, tally)
                    pending = pending[cfg.batch_size:]
                    tally.report()
            while pending:
                _flush(pending[: cfg.batch_size], generate_fn, out_dir, cfg, table, tally)
                pending = pending[cfg.batch_size:]
                tally.report()
    # The catalog beside its videos: typed prompts live nowhere else a gallery reader can see.
    shutil.copyfile(catalog, out_dir / f"catalog{catalog.suffix.lower()}")
    pages = write_gallery(out_dir, cfg.page_size, catalog_name=catalog.name,
                          catalog_file=f"catalog{catalog.suffix.lower()}")
    counts = dict(tally.n)
    if counts["with_unknown_words"]:
        log.warning("%d of %d prompts have words the model does not know, rendered without them "
                    "(renders.parquet: unknown_words): %s", counts["with_unknown_words"], counts["rows"],
                    ", ".join(tally.unknown_seen))
    return {
        **counts,
        "gallery": GALLERY,
        "table": TABLE,
        "pages": pages,
        "preview": tally.preview,
        "problems": tally.problems,
    }


# ---------------------------------------------------------------------------- one batch


@dataclass(frozen=True)
class _Item:
    """One sample of one catalog row (a rejected row is a single item)."""

    row: CatalogRow
    sample: int
    seed: int


def _flush(items: list[_Item], generate_fn: GenerateFn, out_dir: Path, cfg: RenderConfig,
           table: _TableWriter, tally: _Tally) -> None:
    todo = [it for it in items if not it.row.error]
    results = iter(_generate(generate_fn, [it.row.prompt for it in todo], [it.seed for it in todo]))
    for it in items:
        result = "" if it.row.error else next(results)
        unknown = tuple(result.unknown_words) if isinstance(result, Generated) else ()
        if it.row.error:
            status, reason, paths = "rejected", it.row.error, {}
        else:
            status, reason, paths = _write_result(result, it, out_dir, cfg)
        table.add(it, status, reason, paths, unknown)
        tally.add(it, status, reason, paths, unknown)


def _generate(generate_fn: GenerateFn, prompts: list[str], seeds: list[int]) -> list[Any]:
    """One result per prompt: a clip, a reason string, or the exception it raised.

    A batch that raises is retried one prompt at a time, so a single bad prompt fails alone
    rather than taking the other prompts of its batch with it.
    """
    if not prompts:
        return []
    try:
        out = list(generate_fn(prompts, seeds))
        if len(out) == len(prompts):
            return out
        batch_error: Exception = RuntimeError(f"generate_fn returned {len(out)} results for {len(prompts)} prompts")
    except Exception as exc:  # noqa: BLE001 - any failure is isolated and reported per row
        batch_error = exc
    if len(prompts) == 1:
        return [batch_error]
    return [_generate(generate_fn, [p], [s])[0] for p, s in zip(prompts, seeds)]


def _write_result(result: Any, it: _Item, out_dir: Path, cfg: RenderConfig) -> tuple[str, str, dict[str, str]]:
    """-> (status, reason, {format: relative path})."""
    if isinstance(result, Generated):
        result = result.clip if result.clip is not None else result.reason
    if isinstance(result, str):
        return "rejected", result or "rejected by the generator", {}
    if isinstance(result, Exception):
        return "failed", f"generate failed: {type(result).__name__}: {result}", {}
    if not (isinstance(result, np.ndarray) and result.dtype == np.uint8 and result.ndim == 4
            and result.shape[-1] == 3 and result.shape[0] > 0):
        got = f"{result.dtype} {result.shape}" if isinstance(result, np.ndarray) else type(result).__name__
        return "failed", f"generator gave {got}, not a uint8 (T, H, W, 3) clip", {}
    stem = output_name(it.row.id, it.row.prompt, it.sample)
    paths: dict[str, str] = {}
    try:
        for fmt in cfg.formats:
            rel = f"{VIDEOS}/{stem}.{fmt}"
            if fmt == "webm":
                write_video(out_dir / rel, result, cfg.fps)
            else:
                write_gif(out_dir / rel, result, cfg.fps)
            paths[fmt] = rel
    except Exception as exc:  # noqa: BLE001 - a writer failure fails this sample only
        for rel in paths.values():  # no half-set of files for a failed sample
            (out_dir / rel).unlink(missing_ok=True)
        return "failed", f"writing {fmt} failed: {type(exc).__name__}: {exc}", {}
    return "ok", "", paths


def _check_config(cfg: RenderConfig) -> None:
    unknown = [f for f in cfg.formats if f not in FORMATS]
    if unknown or not cfg.formats:
        raise ValueError(f"render formats must be a non-empty subset of {FORMATS}, got {cfg.formats}")
    for name in ("batch_size", "samples", "fps", "page_size", "max_samples"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"[render] {name} must be at least 1, got {getattr(cfg, name)}")


# ---------------------------------------------------------------------------- bookkeeping


class _TableWriter:
    """renders.parquet, appended in row groups of ROW_GROUP rows."""

    def __init__(self, path: Path):
        self.writer = pq.ParquetWriter(path, SCHEMA)
        self.buffer: dict[str, list[Any]] = {name: [] for name in SCHEMA.names}

    def add(self, it: _Item, status: str, reason: str, paths: dict[str, str], unknown: tuple[str, ...]) -> None:
        values = (it.row.row, it.row.id, it.row.prompt, it.seed, it.sample, status, reason,
                  list(unknown), paths.get("webm"), paths.get("gif"))
        for name, value in zip(SCHEMA.names, values):
            self.buffer[name].append(value)
        if len(self.buffer["row"]) >= ROW_GROUP:
            self.flush()

    def flush(self) -> None:
        if self.buffer["row"]:
            self.writer.write_table(pa.table(self.buffer, schema=SCHEMA))
            self.buffer = {name: [] for name in SCHEMA.names}

    def __enter__(self) -> _TableWriter:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        try:
            if exc_type is None:
                self.flush()
        finally:
            self.writer.close()


class _Tally:
    """Per-row statuses (a row's samples may straddle two batches), counts and progress."""

    PREVIEW = 50  # rows kept for the flow's table artifact; bounded so memory stays flat

    def __init__(self, total: int | None, progress: Progress | None):
        self.total, self.progress = total, progress
        self.open: dict[int, list[int]] = {}  # row -> [samples left, worst severity, any unknown word]
        self.n = {"rows": 0, "ok": 0, "rejected": 0, "failed": 0, "videos": 0, "with_unknown_words": 0}
        self.preview: list[dict[str, Any]] = []
        self.problems: list[dict[str, Any]] = []
        self.unknown_seen: dict[str, None] = {}  # the first PREVIEW distinct words, for the warning

    def add(self, it: _Item, status: str, reason: str, paths: dict[str, str], unknown: tuple[str, ...] = ()) -> None:
        left, worst, unk = self.open.pop(it.row.row, [1 if it.row.error else it.row.samples, 0, 0])
        left, worst, unk = left - 1, max(worst, SEVERITY[status]), unk or int(bool(unknown))
        if left:
            self.open[it.row.row] = [left, worst, unk]
        else:
            self.n["rows"] += 1
            self.n[next(s for s, v in SEVERITY.items() if v == worst)] += 1
            self.n["with_unknown_words"] += unk
        self.n["videos"] += status == "ok"
        if len(self.unknown_seen) < self.PREVIEW:
            self.unknown_seen.update(dict.fromkeys(unknown))
        entry = {"row": it.row.row, "id": it.row.id, "prompt": it.row.prompt, "sample": it.sample,
                 "seed": it.seed, "status": status, "reason": reason, "unknown_words": list(unknown),
                 "video": paths.get("webm") or paths.get("gif")}
        if len(self.preview) < self.PREVIEW:
            self.preview.append(entry)
        if status != "ok" and len(self.problems) < self.PREVIEW:
            self.problems.append(entry)

    def report(self) -> None:
        if self.progress is not None:
            self.progress(self.n["rows"], self.total)


# ---------------------------------------------------------------------------- the gallery

PAGE_CSS = """
body { font-family: system-ui, sans-serif; background: #111; color: #ddd; margin: 1.5em; }
a { color: #8cf; }
.grid { display: flex; flex-wrap: wrap; gap: 12px; }
.card { width: 160px; margin: 0; background: #1c1c1c; padding: 6px; border-radius: 6px; }
.card video, .card img { width: 160px; height: 160px; image-rendering: pixelated; background: #000; display: block; }
.card figcaption { font-size: 13px; margin-top: 4px; overflow-wrap: anywhere; }
.card small { color: #888; }
table.problems td { padding: 2px 8px; vertical-align: top; overflow-wrap: anywhere; }
.status-failed { color: #f88; } .status-rejected, .warn, .card small.warn { color: #fc6; }
"""

# A <video>'s inner content only shows in browsers without <video>; a browser that has it but
# cannot play WebM shows nothing. So swap in the GIF when the WebM source errors.
FALLBACK_JS = """
document.querySelectorAll('video source').forEach(function (src) {
  src.addEventListener('error', function () {
    var video = src.parentElement, img = video.querySelector('img');
    if (img) { video.replaceWith(img); }
  });
});
"""


def write_gallery(out_dir: Path, page_size: int, catalog_name: str = "", catalog_file: str = "") -> list[str]:
    """Write index.html (+ page-2.html ..., problems-1.html ...) from renders.parquet.

    Reads the table back in record batches, so the pages cost one page of cards in memory.
    Page 1 is index.html; it also lists the first ``page_size`` rejected and failed rows,
    with links to problems pages when there are more. ``catalog_file``, a file beside the
    pages, is linked from the summary. Returns the pages' relative paths.
    """
    out_dir = Path(out_dir)
    ok_count, problem_count, unknown_rows = _status_counts(out_dir / TABLE)
    n_pages = max(1, -(-ok_count // page_size))
    n_problem_pages = -(-problem_count // page_size) if problem_count > page_size else 0

    def page_name(k: int) -> str:
        return GALLERY if k == 1 else f"page-{k}.html"

    # The first page of problems goes on the index page; keep it before writing the cards.
    first_problems = []
    pages: list[str] = []
    problem_chunk: list[str] = []
    for rec in _records(out_dir / TABLE, ok=False):
        line = _problem_row(rec)
        if len(first_problems) < page_size:
            first_problems.append(line)
        if n_problem_pages:
            problem_chunk.append(line)
            if len(problem_chunk) == page_size:
                pages.append(_write_problem_page(out_dir, len(pages) + 1, n_problem_pages, problem_chunk))
                problem_chunk = []
    if problem_chunk:
        pages.append(_write_problem_page(out_dir, len(pages) + 1, n_problem_pages, problem_chunk))

    name = f"<code>{html.escape(catalog_name)}</code>" if catalog_name else ""
    if name and catalog_file:
        name = f'<a href="{html.escape(catalog_file)}">{name}</a>'
    summary = (f"{ok_count} videos · {problem_count} rejected or failed" + (f" from {name}" if name else "")
               + (f' · <span class="warn">{unknown_rows} prompts with words the model does not know'
                  f" (rendered without them)</span>" if unknown_rows else ""))
    problems_html = _problems_section(first_problems, problem_count, n_problem_pages)
    cards: list[str] = []
    card_pages: list[str] = []
    k = 1
    for rec in _records(out_dir / TABLE, ok=True):
        cards.append(_card(rec))
        if len(cards) == page_size:
            card_pages.append(_write_card_page(out_dir, page_name(k), k, n_pages, cards, summary,
                                               problems_html if k == 1 else "", page_name))
            cards, k = [], k + 1
    if cards or not card_pages:
        card_pages.append(_write_card_page(out_dir, page_name(k), k, n_pages, cards, summary,
                                           problems_html if k == 1 else "", page_name))
    return card_pages + pages


def _status_counts(table: Path) -> tuple[int, int, int]:
    """(ok samples, problem samples, catalog rows with unknown words)."""
    t = pq.read_table(table, columns=["row", "status", "unknown_words"])
    ok = int(pc.sum(pc.equal(t.column("status"), "ok")).as_py() or 0)
    has_unknown = pc.greater(pc.list_value_length(t.column("unknown_words")), 0)
    unknown_rows = len(pc.unique(pc.filter(t.column("row"), has_unknown)))
    return ok, t.num_rows - ok, unknown_rows


def _records(table: Path, ok: bool) -> Iterator[dict[str, Any]]:
    for batch in pq.ParquetFile(table).iter_batches(batch_size=1024):
        for rec in batch.to_pylist():
            if (rec["status"] == "ok") == ok:
                yield rec


def _card(rec: dict[str, Any]) -> str:
    prompt = html.escape(rec["prompt"])
    webm, gif = rec["webm"], rec["gif"]
    img = f'<img src="{html.escape(gif)}" alt="{prompt}" loading="lazy">' if gif else ""
    if webm:
        media = (f'<video autoplay loop muted playsinline preload="auto" title="{prompt}">'
                 f'<source src="{html.escape(webm)}" type="video/webm">{img}</video>')
    else:
        media = img
    meta = html.escape(f"seed {rec['seed']} · {rec['id']} · sample {rec['sample']}")
    unknown = _unknown(rec)
    note = f'<br><small class="warn" title="drawn without these words">unknown: {unknown}</small>' if unknown else ""
    return f'<figure class="card">{media}<figcaption>{prompt}<br><small>{meta}</small>{note}</figcaption></figure>'


def _unknown(rec: dict[str, Any]) -> str:
    return html.escape(", ".join(rec.get("unknown_words") or []))


def _problem_row(rec: dict[str, Any]) -> str:
    cells = [str(rec["row"]), rec["id"], rec["prompt"] or "(empty)", rec["status"], rec["reason"]]
    tds = "".join(f"<td>{html.escape(c)}</td>" for c in cells) + f'<td class="warn">{_unknown(rec)}</td>'
    return f'<tr class="status-{html.escape(rec["status"])}">{tds}</tr>'


def _problems_table(lines: list[str]) -> str:
    head = "<tr><th>row</th><th>id</th><th>prompt</th><th>status</th><th>reason</th><th>unknown words</th></tr>"
    return f'<table class="problems">{head}{"".join(lines)}</table>'


def _problems_section(lines: list[str], total: int, n_pages: int) -> str:
    if not lines:
        return ""
    more = (f'<p>Showing the first {len(lines)} of {total}; <a href="problems-1.html">all of them</a>.</p>'
            if n_pages else "")
    return f'<h2>Rejected and failed</h2>{more}{_problems_table(lines)}'


def _nav(k: int, n: int, name: Callable[[int], str]) -> str:
    if n <= 1:
        return ""
    prev = f'<a href="{name(k - 1)}">&larr; previous</a>' if k > 1 else ""
    nxt = f'<a href="{name(k + 1)}">next &rarr;</a>' if k < n else ""
    links = " ".join(f'<a href="{name(i)}">{i}</a>' if i != k else f"<b>{i}</b>" for i in range(1, n + 1))
    return f'<nav>{prev} page {k} of {n} {nxt}<details><summary>all pages</summary>{links}</details></nav>'


def _page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{PAGE_CSS}</style></head>"
            f"<body>{body}<script>{FALLBACK_JS}</script></body></html>\n")


def _write_card_page(out_dir: Path, name: str, k: int, n: int, cards: list[str], summary: str,
                     problems_html: str, page_name: Callable[[int], str]) -> str:
    nav = _nav(k, n, page_name)
    body = (f"<h1>t2v gallery</h1><p>{summary}</p>{nav}"
            f'<div class="grid">{"".join(cards)}</div>{nav}{problems_html}')
    atomic_write_text(out_dir / name, _page(f"t2v gallery, page {k} of {n}", body))
    return name


def _write_problem_page(out_dir: Path, k: int, n: int, lines: list[str]) -> str:
    name = f"problems-{k}.html"
    nav = _nav(k, n, lambda i: f"problems-{i}.html")
    body = (f'<h1>Rejected and failed rows</h1><p><a href="{GALLERY}">back to the gallery</a></p>'
            f"{nav}{_problems_table(lines)}{nav}")
    atomic_write_text(out_dir / name, _page(f"t2v problems, page {k} of {n}", body))
    return name


# ---------------------------------------------------------------------------- a trained model


def make_generate_fn(model: Any) -> GenerateFn:
    """Bind a t2v_core.generate.Text2Video to the GenerateFn shape. Each prompt comes back as
    a ``Generated`` carrying its unknown words: the tokens, in the model's token form, that
    the encoder maps to UNK_ID. A prompt with no
    known word is refused (clip None); an empty one comes back as the reason string "empty
    prompt"; the rest of the batch is generated in one call."""

    def generate(prompts: list[str], seeds: list[int]) -> list[np.ndarray | str | Generated]:
        results: list[np.ndarray | str | Generated] = ["empty prompt"] * len(prompts)
        live = [i for i, p in enumerate(prompts) if p.strip()]
        ids, lengths, n_oov, tokens = model.encode([prompts[i] for i in live])
        keep: list[int] = []
        unknown: dict[int, tuple[str, ...]] = {}
        for j, (i, words) in enumerate(zip(live, tokens)):
            # The same test encode_tokens applies, over every token (also past max_len), each
            # word once, in prompt order.
            unknown[i] = tuple(dict.fromkeys(w for w in words if model.vocab.get(w, UNK_ID) == UNK_ID))
            if len(words) > n_oov[j]:
                keep.append(j)
            else:
                # A prompt of unknown words would give the model nothing but <unk>: its
                # video would ignore the text, so it is refused rather than faked.
                shown = ", ".join(words[:5]) + (", ..." if len(words) > 5 else "")
                results[i] = Generated(None, f"no known words ({shown})" if words else "no known words", unknown[i])
        if keep:
            clips = model.generate_ids(ids[keep], lengths[keep], [int(seeds[live[j]]) for j in keep])
            for clip, j in zip(clips, keep):
                results[live[j]] = Generated(clip, "", unknown[live[j]])
        return results

    return generate
