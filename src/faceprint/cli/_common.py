"""What every command module shares, below all of them: the two consoles, engine construction,
the mapping of faceprint errors to a message and an exit code, JSON printing, the progress bar
and the options several commands take.  Imports no command module and no heavy library at
import time (``faceprint --help`` stays fast)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from faceprint.errors import FaceprintError

if TYPE_CHECKING:
    from faceprint.engine import Engine

out = Console()
err = Console(stderr=True)

JsonOpt = typer.Option(False, "--json", help="Print JSON instead of tables.")
CalOpt = typer.Option(None, "--calibration", help="Calibration table (JSON from `faceprint calibrate`); default: the one shipped for the model.")
MinScoreOpt = typer.Option(None, "--min-score", help="Detector score threshold (default 0.85).")
FaceOpt = typer.Option("largest", "--face", help="Which face to use when there are several: largest, center, single (error if several), or an index.")
DbOpt = typer.Option(
    None, "--db", help="Gallery database: a SQLite file or a postgresql://USER@HOST:PORT/DB URL (default $FACEPRINT_DB or gallery.db in your data directory)."
)
RayOpt = typer.Option(
    None, "--ray", help="Run the analysis on a Ray cluster: the HOST:PORT of its head (or auto), or 'local' to start one here (docs/scale-out.md)."
)
VectorsOpt = typer.Option(
    None, "--vectors", help="Shared vector backend, milvus://HOST:PORT[/PREFIX] (default $FACEPRINT_VECTORS; none: a local index beside the database)."
)


def make_engine(**overrides: Any) -> Engine:
    """An Engine on the settings read now (file, environment, then ``overrides``); its detector
    and embedder are shared with the other commands this process runs on the same settings
    (``Engine(share_models=True)``: tests run many commands in one process)."""
    from faceprint.engine import Engine
    from faceprint.settings import Settings

    return Engine(Settings.load(**overrides), share_models=True)


@contextmanager
def cli_errors(as_json: bool) -> Iterator[None]:
    """Named faceprint errors become one clear line (or a JSON error object) and an exit code."""
    try:
        yield
    except FaceprintError as exc:
        reasons = getattr(exc, "reasons", None)
        if as_json:
            print(json.dumps({"error": {"code": exc.code, "message": str(exc), **({"reasons": reasons} if reasons else {})}}))
        else:
            err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            for r in reasons or []:
                if r != str(exc):
                    err.print(f"  - {escape(r)}", highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=1, default=float))


def bar_columns() -> tuple[Any, ...]:
    return TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn()


@contextmanager
def progress(total: int, what: str, enabled: bool = True) -> Iterator[Any]:
    """A progress bar on stderr (off with ``enabled=False``, e.g. under ``--json``); yields ``step(n)``."""
    bar = Progress(*bar_columns(), console=err, disable=not enabled, transient=False)
    with bar:
        task = bar.add_task(what, total=total)
        yield lambda n: bar.advance(task, n)
