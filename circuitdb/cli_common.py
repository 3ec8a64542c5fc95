"""What every circuitdb command shares: one-line errors, the --store, selection and output options, rendering results."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import click

from circuitdb.catalog import Catalog
from circuitdb.errors import CircuitdbError
from circuitdb.lazy import pd
from circuitdb.queries.results import Result
from circuitdb.queries.selection import Selection
from circuitdb.store.signals import Interrupted

# counts and sizes: click refuses a value out of range before a command starts (the API checks the same again)
AT_LEAST_0 = click.IntRange(min=0)
AT_LEAST_1 = click.IntRange(min=1)
PROMPTS = click.IntRange(min=4)

MODEL_HELP = ("toy, a checkpoint NAME.pt, a local Hugging Face model folder, or a TransformerLens name; "
              "bridge:FOLDER or bridge:NAME runs it under TransformerLens's TransformerBridge")
STORE_HELP = "kuzu:PATH (default kuzu:./circuitdb.kuzu) or bolt://HOST:PORT / neo4j://HOST:PORT; env CIRCUITDB_STORE"


class OneLineUsageError(click.UsageError):
    """A usage error (a bad or missing option) shown as one line, like every other error, with where to find help."""

    def __init__(self, error: click.UsageError) -> None:
        super().__init__(error.format_message(), error.ctx)
        self.exit_code = error.exit_code

    def show(self, file: Any = None) -> None:
        where = f" (see `{self.ctx.command_path} --help`)" if self.ctx is not None else ""
        click.echo(f"error: {_one_line(self.format_message())}{where}", file=file, err=file is None)


def _usage(exc: click.UsageError) -> click.UsageError:
    """`exc` as one line; a group called without a command still prints its help."""
    if isinstance(exc, (OneLineUsageError, click.exceptions.NoArgsIsHelpError)):
        return exc
    return OneLineUsageError(exc)


class Group(click.Group):
    """Turns CircuitdbError into one line on stderr and exit 1, a usage error into one line and exit 2, an interrupt
    into a truthful line and exit 128 + signal; tracebacks only with --debug."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as exc:
            raise _usage(exc) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise _usage(exc) from None
        except CircuitdbError as exc:
            if ctx.params.get("debug"):
                raise
            click.echo(f"error: {_one_line(str(exc))}", err=True)
            sys.exit(1)
        except Interrupted as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(128 + exc.signum)
        except KeyboardInterrupt:
            click.echo("error: interrupted; everything written before the interrupt is complete", err=True)
            sys.exit(130)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except Exception as exc:  # an unforeseen failure still gets one line; --debug shows where
            if ctx.params.get("debug"):
                raise
            click.echo(f"error: {type(exc).__name__}: {_one_line(str(exc))} (rerun with --debug for the traceback)", err=True)
            sys.exit(2)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def wait_seconds() -> float:
    """The global `--wait`: how long a command waits for another process holding the embedded file."""
    return click.get_current_context().find_root().params.get("wait", 10.0)


def open_catalog(store: str | None, read_only: bool = False, create: bool = True) -> Catalog:
    """The catalog a command works on: read commands open it read-only (readers share the embedded file); the store
    opens at its first use, after the command's input is checked, so a refused command writes nothing."""
    return Catalog(store, read_only=read_only, create=create and not read_only, wait=wait_seconds(), lazy=True)


def store_option(f: Callable) -> Callable:
    return click.option("--store", envvar="CIRCUITDB_STORE", default=None, help=STORE_HELP)(f)


def output_options(f: Callable) -> Callable:
    """`--json` (the result's exact `.to_dict()`) and `--csv` (its main table); a readable table otherwise."""
    f = click.option("--csv", "fmt", flag_value="csv", help="The result's main table as CSV.")(f)
    return click.option("--json", "fmt", flag_value="json", help="Exact, machine-readable output.")(f)


def render(result: Result, fmt: str | None = None) -> None:
    """Print a result as JSON, CSV or titled tables."""
    if fmt == "json":
        click.echo(json.dumps(result.to_dict(), indent=2))
    elif fmt == "csv":
        from circuitdb.analysis.tables import csv_text

        click.echo(csv_text(result.frame), nl=False)
    else:
        for title, frame in result.tables():
            print_frame(frame, title)


def print_frame(frame: pd.DataFrame, title: str = "") -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    # text is shown as it is: a `[...]` in a label or a name is not rich markup
    table = Table(title=escape(title) if title else None, show_lines=False)
    for column in frame.columns:
        table.add_column(escape(str(column)))
    for row in frame.itertuples(index=False):
        table.add_row(*[escape(_cell(v)) for v in row])
    Console(width=None if sys.stdout.isatty() else 200).print(table)


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value))
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def selection_options(f: Callable) -> Callable:
    """The options every selection reads the same way."""
    for option in reversed(
        [
            click.option("--model", "models", multiple=True, help="Model name (repeatable)."),
            click.option("--task", "tasks", multiple=True, help="Task name (repeatable)."),
            click.option("--threshold", "thresholds", multiple=True, type=float, help="Performance threshold in (0, 1]."),
            click.option("--method", "methods", multiple=True, help="Discovery method (prune, eap-ig, ...)."),
            click.option("--ablation", "ablations", multiple=True, help="Ablation (mean, zero, resample, ...)."),
            click.option("--metric", "metrics", multiple=True, help="Metric (logit_diff, ...)."),
            click.option("--direction", "directions", multiple=True, help="noising or denoising."),
            click.option("--run", "run_ids", multiple=True, help="Run id or unique prefix (repeatable)."),
        ]
    ):
        f = option(f)
    return f


def selection(**kw: Any) -> Selection:
    keys = ("models", "tasks", "thresholds", "methods", "ablations", "metrics", "directions", "run_ids")
    return Selection(**{k: tuple(kw[k]) for k in keys})
