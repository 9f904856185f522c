"""The `t2v` command."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

import flows  # noqa: F401  (sets Prefect's telemetry off before Prefect loads)
from flows.settings import WORKSPACE_ENV, parse_set, resolve_profile, workspace_path
from t2v_core.gc import MIN_AGE_S
from t2v_core.pipeline import STAGES

if TYPE_CHECKING:
    from t2v_core.store import ArtifactStore

app = typer.Typer(
    help="t2v: text to video as a pipeline of cacheable stages "
    f"({' -> '.join(STAGES)}). Prefect runs it; the artifact store caches it.",
    no_args_is_help=True,
    add_completion=False,
)
corpus_app = typer.Typer(help="Corpora: the built-in Moving Shapes, and a sample of ordinary footage.",
                         no_args_is_help=True)
app.add_typer(corpus_app, name="corpus")
model_app = typer.Typer(help="Each corpus's default model: show, pin, unpin, rollback.", no_args_is_help=True)
app.add_typer(model_app, name="model")

ProfileOpt = Annotated[str, typer.Option("--profile", "-p", help="profile name (data/profiles) or a .toml path")]
WorkspaceOpt = Annotated[str, typer.Option("--workspace", "-w", help=f"workspace folder (default ${WORKSPACE_ENV} or ./workspace)")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", "-s", help="override a setting: SECTION.NAME=VALUE (repeatable)")]


class _Bars:
    """Progress on a terminal: a tqdm bar per stage, closed as soon as its stage is done."""

    def __init__(self) -> None:
        from tqdm import tqdm

        self.tqdm, self.bars, self.lock = tqdm, {}, threading.Lock()

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        with self.lock:  # shards report from several task threads
            bar = self.bars.get(stage)
            if bar is None:
                bar = self.bars[stage] = self.tqdm(total=total, desc=f"{stage:9s}", leave=True, unit="it")
            if total and bar.total != total:
                bar.total = total
            bar.n = done
            bar.refresh()
            if total and done >= total:
                bar.close()
                del self.bars[stage]

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


class _Lines:
    """Progress in a log (no terminal): a line when a stage starts and when it ends, and at
    most one line of progress every ``every_s`` seconds in between, so a log stays readable
    where carriage-returned bar updates would pile up."""

    def __init__(self, every_s: float = 10.0) -> None:
        self.every_s, self.last, self.seen, self.lock = every_s, time.monotonic(), set(), threading.Lock()

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        with self.lock:
            now = time.monotonic()
            if stage not in self.seen:
                self.seen.add(stage)
                typer.echo(f"{stage}: started", err=True)
            if total and done >= total:
                typer.echo(f"{stage}: done ({done}/{total})", err=True)
            elif now - self.last >= self.every_s:
                typer.echo(f"{stage}: {done}/{total or '?'}", err=True)
            else:
                return
            self.last = now

    def close(self) -> None:
        pass


def _with_bars(fn: Any) -> Any:
    from tasks._common import PROGRESS_SINKS

    bars = _Bars() if sys.stderr.isatty() else _Lines()
    PROGRESS_SINKS.append(bars)
    try:
        return fn()
    finally:
        PROGRESS_SINKS.remove(bars)
        bars.close()


@app.command()
def run(
    stages: Annotated[list[str] | None, typer.Argument(help=f"stages to run (default: all): {', '.join(STAGES)}")] = None,
    profile: ProfileOpt = "demo",
    workspace: WorkspaceOpt = "",
    set_: SetOpt = None,
    catalog: Annotated[str, typer.Option(help="prompt catalog for the render stage")] = "",
) -> None:
    """Run the pipeline (or STAGES with what they need); cached stages return at once."""
    from flows.pipeline import run as run_flow

    for s in stages or []:
        if s not in STAGES:
            raise typer.BadParameter(f"unknown stage {s!r}; stages: {', '.join(STAGES)}")
    overrides = parse_set(set_ or [])
    t0 = time.perf_counter()
    from t2v_core.corpus.manifests import CorpusError

    try:
        result = _with_bars(lambda: run_flow(profile, stages or None, workspace, overrides or None, catalog))
    except CorpusError as exc:  # a corpus a stage cannot serve: one sentence, no traceback
        _fail(exc)
    wall = time.perf_counter() - t0
    refs = result["refs"]
    typer.echo("")
    for stage in STAGES:
        if stage in refs:
            how = "cached" if refs[stage]["cached"] else "built "
            typer.echo(f"  {stage:9s} {how} {refs[stage]['path']}")
    typer.echo(f"  ran: {result['ran']}  cached: {result['cached']}")
    if "render" in refs:
        out = Path(refs["render"]["path"])
        typer.echo(f"\nRendered videos: {out / 'videos'}\nGallery page:    {out / 'index.html'}")
    if "evaluate" in refs:
        metrics = json.loads((Path(refs["evaluate"]["path"]) / "metrics.json").read_text())
        typer.echo("Evaluation:      " + _headline(metrics))
    typer.echo(f"Wall time:       {wall:.1f} s")


def _headline(m: dict[str, Any]) -> str:
    def get(*path: str) -> Any:
        cur: Any = m
        for p in path:
            cur = cur.get(p, {}) if isinstance(cur, dict) else {}
        return cur if isinstance(cur, (int, float)) else float("nan")

    line = (f"R-precision {get('text_video', 'r_precision'):.1%} (real clips {get('text_video', 'r_precision_real'):.1%}, "
            f"chance {get('text_video', 'r_precision_chance'):.1%}, pool {get('text_video', 'pool'):.0f}); "
            f"motion ratio {get('motion', 'ratio'):.2f}; variety {get('text_video', 'variety'):.2f}")
    if "judge" in m:
        line += (f"\nJudge ({m['judge'].get('name')}):  all-correct seen {get('judge', 'seen', 'all_correct'):.1%}, "
                 f"held-out {get('judge', 'held_out', 'all_correct'):.1%}; coherence "
                 f"{get('judge', 'coherence', 'coherent_share'):.1%}; variety {get('judge', 'variety'):.1%}")
    return line


@app.command()
def render(
    catalog: Annotated[Path, typer.Argument(help="prompt catalog: .csv, .jsonl or .txt")],
    model: Annotated[str, typer.Option(help="training run key (default: the promoted, else newest, model)")] = "",
    profile: ProfileOpt = "demo",
    workspace: WorkspaceOpt = "",
    samples: Annotated[int, typer.Option(help="videos per prompt (default: the profile's)")] = 0,
) -> None:
    """Render a prompt catalog with the newest trained model."""
    from flows.render import render_catalog_flow

    if not catalog.is_file():
        raise typer.BadParameter(f"catalog not found: {catalog}")
    result = _with_bars(lambda: render_catalog_flow(str(catalog), model=model, profile=profile, workspace=workspace,
                                                    samples=samples))
    n = result["counts"]
    typer.echo(f"\n{n.get('rows', 0)} prompts: {n.get('ok', 0)} ok, {n.get('rejected', 0)} rejected, "
               f"{n.get('failed', 0)} failed; {n.get('videos', 0)} videos; "
               f"{n.get('with_unknown_words', 0)} with unknown words")
    if n.get("with_unknown_words"):
        typer.echo("warning: the model does not know some words of those prompts and drew their videos "
                   "without them; see the column unknown_words of renders.parquet, or the gallery", err=True)
    typer.echo(f"Gallery page: {result['gallery_url'] or result['gallery']}")


@corpus_app.command("synth")
def corpus_synth(
    profile: ProfileOpt = "demo",
    workspace: WorkspaceOpt = "",
    set_: SetOpt = None,
    out: Annotated[str, typer.Option(help="write to this folder instead of the workspace")] = "",
) -> None:
    """Write the profile's built-in corpus (videos + manifest.csv): Moving Shapes, or Moving
    Digits with `-p digits-demo`."""
    prof = resolve_profile(profile, parse_set(set_ or []) or None)
    if out:
        from t2v_core.corpus.builtin import write_builtin

        manifest = write_builtin(prof.synth, Path(out))
    else:
        from flows.pipeline import run as run_flow

        result = run_flow(profile, ["synth"], workspace, parse_set(set_ or []) or None)
        manifest = Path(result["refs"]["synth"]["path"]) / "manifest.csv"
    typer.echo(f"manifest: {manifest}")


@corpus_app.command("footage")
def corpus_footage(
    out: Annotated[Path, typer.Option(help="folder to write the videos and manifest.csv into")],
    videos: Annotated[int, typer.Option(help="number of clips")] = 120,
    size: Annotated[int, typer.Option(help="frame width and height in pixels")] = 48,
    frames: Annotated[int, typer.Option(help="frames per clip")] = 12,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
) -> None:
    """Write a sample of ordinary footage: a manifest like one of your own.

    Textures and motions, free-text captions, a few broken files; then try
    `t2v run --set ingest.manifest=OUT/manifest.csv`."""
    from t2v_core.corpus.footage import write_footage

    manifest = write_footage(out, n_videos=videos, height=size, width=size, frames=frames, seed=seed)
    typer.echo(f"manifest: {manifest}")


@app.command()
def dashboard(
    host: Annotated[str, typer.Option(help="address to bind; see the README before leaving 127.0.0.1")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Prefect server port")] = 4200,
    database_url: Annotated[str, typer.Option(envvar="T2V_DATABASE_URL", help="PostgreSQL URL (default: SQLite)")] = "",
    workspace: WorkspaceOpt = "",
) -> None:
    """Start a local Prefect server, serve the deployments, print the UI address."""
    from flows.dashboard import main

    main(host=host, port=port, database_url=database_url, workspace=workspace)


@app.command()
def gc(
    keep_runs: Annotated[int | None, typer.Option("--keep-runs", help="keep what the newest N pipeline runs used (default: the profile's [runner] keep_runs)")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="delete; without it, only list what would be deleted")] = False,
    min_age: Annotated[float, typer.Option("--min-age", help="hours: keep anything committed more recently (a run in progress)")] = MIN_AGE_S / 3600,
    profile: ProfileOpt = "demo",
    workspace: WorkspaceOpt = "",
) -> None:
    """List (and with --yes delete) artifacts that no model pointer, pinned model, or recent run needs."""
    from t2v_core import gc as retention
    from t2v_core.store import ArtifactStore

    n = resolve_profile(profile).runner.keep_runs if keep_runs is None else keep_runs
    store = ArtifactStore(workspace_path(workspace))
    garbage = retention.plan_gc(store, n, min_age * 3600)
    for g in garbage:
        typer.echo(f"  {retention.human(g.bytes):>10s}  {g.stage}/{g.key}")
    total = retention.human(sum(g.bytes for g in garbage))
    if not garbage:
        typer.echo(f"nothing to delete in {store.root} (keeping the last {n} runs)")
    elif yes:
        typer.echo(f"deleted {len(garbage)} artifacts, freed {retention.human(retention.collect(store, garbage))}")
    else:
        typer.echo(f"{len(garbage)} artifacts, {total} would be deleted (keeping the last {n} runs); "
                   "run again with --yes to delete them")


CorpusOpt = Annotated[str, typer.Option("--corpus", help="corpus id (default: the profile's corpus)")]


def _model_target(corpus: str, profile: str, set_: list[str] | None, workspace: str) -> tuple[ArtifactStore, str]:
    """The store and the corpus id: --corpus, else the profile's corpus."""
    from t2v_core.promote import corpus_id_for
    from t2v_core.store import ArtifactStore

    store = ArtifactStore(workspace_path(workspace))
    try:
        return store, corpus or corpus_id_for(resolve_profile(profile, parse_set(set_ or []) or None), store)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


def _fail(exc: ValueError) -> NoReturn:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(1)


@model_app.command("show")
def model_show(corpus: CorpusOpt = "", profile: ProfileOpt = "demo", set_: SetOpt = None,
               workspace: WorkspaceOpt = "", last: Annotated[int, typer.Option(help="decisions to list")] = 5) -> None:
    """The corpus's default model, whether it is pinned, and its last decisions."""
    from t2v_core import promote

    store, cid = _model_target(corpus, profile, set_, workspace)
    ref, pin = promote.default_model(store, cid), promote.pinned(store, cid)
    typer.echo(f"corpus:  {cid}")
    typer.echo(f"default: {ref.key if ref else '-'}" + (f"  ({ref.path})" if ref else ""))
    typer.echo(f"pinned:  {pin or 'no'}")
    typer.echo(f"rollback would restore: {promote.rollback_target(store, cid) or '-'}")
    for e in promote.history(store, cid)[-last:]:
        detail = e.get("reason", "")
        typer.echo(f"  {e['at']}  {e['action']:8s} {e['previous'] or '-'} -> {e['default'] or '-'}  {detail}")


@model_app.command("pin")
def model_pin(key: Annotated[str, typer.Argument(help="training run key")], corpus: CorpusOpt = "",
              profile: ProfileOpt = "demo", set_: SetOpt = None, workspace: WorkspaceOpt = "") -> None:
    """Make a training run the corpus's default; nightly promotion leaves it until unpin."""
    from t2v_core import promote

    store, cid = _model_target(corpus, profile, set_, workspace)
    try:
        ref = promote.pin(store, cid, key)
    except ValueError as exc:
        _fail(exc)
    typer.echo(f"corpus {cid}: pinned to {ref.key}")


@model_app.command("unpin")
def model_unpin(corpus: CorpusOpt = "", profile: ProfileOpt = "demo", set_: SetOpt = None,
                workspace: WorkspaceOpt = "") -> None:
    """Let nightly promotion move the corpus's default again."""
    from t2v_core import promote

    store, cid = _model_target(corpus, profile, set_, workspace)
    was = promote.unpin(store, cid)
    typer.echo(f"corpus {cid}: " + ("unpinned" if was else "was not pinned"))


@model_app.command("rollback")
def model_rollback(corpus: CorpusOpt = "", profile: ProfileOpt = "demo", set_: SetOpt = None,
                   workspace: WorkspaceOpt = "") -> None:
    """Make the model that was the default before the current one the default again."""
    from t2v_core import promote

    store, cid = _model_target(corpus, profile, set_, workspace)
    try:
        ref = promote.rollback(store, cid)
    except ValueError as exc:
        _fail(exc)
    typer.echo(f"corpus {cid}: default is {ref.key} again")


@app.command()
def stages() -> None:
    """List the stages: what each needs, its settings sections, and what it makes."""
    from t2v_core.pipeline import REGISTRY

    for s in REGISTRY.values():
        needs = ", ".join(s.inputs) or "-"
        sharded = ", sharded" if s.sharded else ""
        typer.echo(f"{s.name:9s} <- {needs:27s} [{', '.join(s.sections)}{sharded}]  {s.doc}")


@app.command()
def where(workspace: WorkspaceOpt = "") -> None:
    """Print the workspace folder in use."""
    typer.echo(str(workspace_path(workspace)))


if __name__ == "__main__":
    app()
