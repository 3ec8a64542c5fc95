"""Progress for long work, without torch: `Reporter` is the protocol jobs call (silent), `RichReporter` the CLI's bars
(drawn on a terminal, silent when output is piped)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # rich loads when a bar is drawn, not when the CLI starts
    from rich.console import Console


class Reporter:
    """Progress callbacks a job calls; this one stays silent (tests, library use)."""

    def start(self, label: str, total: int | None = None) -> Callable[[int], None]:
        """A new piece of work; returns `advance(n)`."""
        return lambda n: None

    def note(self, text: str) -> None:
        """A line of news (a run written, a run skipped)."""

    def status(self, text: str) -> None:
        """The current piece of work's state in words (units done, running, failed)."""


class RichReporter(Reporter):
    """One bar per piece of work (pruning sweeps, path patching) under an overall bar of runs."""

    def __init__(self, console: Console | None = None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = console or Console(stderr=True)
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                 console=self.console, transient=True, disable=not self.console.is_terminal)
        self.current: int | None = None

    def __enter__(self) -> RichReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def start(self, label: str, total: int | None = None) -> Callable[[int], None]:
        if self.current is not None:
            self.progress.remove_task(self.current)
        task = self.current = self.progress.add_task(label, total=total)
        return lambda n: self.progress.advance(task, n)

    def status(self, text: str) -> None:
        if self.current is not None:
            self.progress.update(self.current, description=text)

    def note(self, text: str) -> None:
        if self.console.is_terminal:
            self.console.print(text, highlight=False)
        else:
            print(text, flush=True)
