"""The `t2v` command."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

import flows  # noqa: F401  (sets Prefect's telemetry off before Prefect loads)
from flows.settings import WORKSPACE_ENV, parse_set, resolve_profile, workspace_path
from t2v_core.pipeline import STAGES

app = typer.Typer(
    help="t2v: text to video as a pipeline of cacheable stages "
    f"({' -> '.join(STAGES)}). Prefect runs it; the artifact store caches it.",
    no_args_is_help=True,
    add_completion=False,
)
corpus_app = typer.Typer(help="The built-in Moving Shapes corpus.", no_args_is_help=True)
app.add_typer(corpus_app, name="corpus")

ProfileOpt = Annotated[str, typer.Option("--profile", "-p", help="profile name (data/profiles) or a .toml path")]
WorkspaceOpt = Annotated[str, typer.Option("--workspace", "-w", help=f"workspace folder (default ${WORKSPACE_ENV} or ./workspace)")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", "-s", help="override a setting: SECTION.NAME=VALUE (repeatable)")]


class _Bars:
    """tqdm progress bars, one per stage, fed by the tasks' progress callbacks."""

    def __init__(self) -> None:
        from tqdm import tqdm

        self.tqdm, self.bars = tqdm, {}

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        bar = self.bars.get(stage)
        if bar is None:
            bar = self.bars[stage] = self.tqdm(total=total, desc=f"{stage:9s}", leave=True, unit="it")
        if total and bar.total != total:
            bar.total = total
        bar.n = done
        bar.refresh()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def _with_bars(fn: Any) -> Any:
    from tasks._common import PROGRESS_SINKS

    bars = _Bars()
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
    result = _with_bars(lambda: run_flow(profile, stages or None, workspace, overrides or None, catalog))
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

    return (f"all-correct seen {get('seen', 'all_correct'):.1%}, held-out {get('held_out', 'all_correct'):.1%}; "
            f"coherence {get('coherence', 'coherent_share'):.1%}; variety {get('variety'):.1%}")


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
    result = _with_bars(lambda: render_catalog_flow(str(catalog), model, profile, workspace, samples))
    typer.echo(f"\n{result['counts']}\nGallery page: {result['gallery']}")


@corpus_app.command("synth")
def corpus_synth(
    profile: ProfileOpt = "demo",
    workspace: WorkspaceOpt = "",
    set_: SetOpt = None,
    out: Annotated[str, typer.Option(help="write to this folder instead of the workspace")] = "",
) -> None:
    """Write the built-in Moving Shapes corpus (videos + manifest.csv)."""
    prof = resolve_profile(profile, parse_set(set_ or []) or None)
    if out:
        from t2v_core.corpus.synthetic import write_corpus

        manifest = write_corpus(prof.synth, Path(out))
    else:
        from flows.pipeline import run as run_flow

        result = run_flow(profile, ["synth"], workspace, parse_set(set_ or []) or None)
        manifest = Path(result["refs"]["synth"]["path"]) / "manifest.csv"
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
def stages() -> None:
    """List the stages and what each needs."""
    from t2v_core.pipeline import DEPENDS

    for s in STAGES:
        typer.echo(f"{s:9s} <- {', '.join(DEPENDS[s]) or '-'}")


@app.command()
def where(workspace: WorkspaceOpt = "") -> None:
    """Print the workspace folder in use."""
    typer.echo(str(workspace_path(workspace)))


if __name__ == "__main__":
    app()
