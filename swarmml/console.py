"""How swarmml shows things to people: tables, JSON for scripts, progress.

Commands print through these helpers so that every table looks alike and
`-o json` always means the same thing.
"""
import json
import sys
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

# Progress and notes go to stderr so that stdout stays clean for -o json and
# for commands whose last line is meant to be captured (build, url).
# Off a terminal (CI logs, pipes) rich would wrap at 80 columns and truncate table cells.
_WIDTH = None if sys.stdout.isatty() else 200
err = Console(stderr=True, highlight=False, width=_WIDTH)
out = Console(highlight=False, width=_WIDTH)


def table(rows, columns, title=None):
    """Print rows (a list of dicts) as a table with the given column keys."""
    t = Table(title=title, show_edge=False, header_style="bold")
    for col in columns:
        t.add_column(col.upper().replace("_", " "))
    for row in rows:
        t.add_row(*["" if row.get(c) is None else str(row.get(c)) for c in columns])
    out.print(t)


def emit_json(data):
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def note(message):
    err.print(message)


def warning(message):
    """One line on stderr, however long (rich would wrap it at the console's width), taken as plain text:
    a warning quotes the user's own values, in which rich would read [...] as markup."""
    err.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)


class _NoBars:
    """Stands in for a Progress when nothing is to be shown (show=False, the Python API's default in tests)."""

    console = Console(quiet=True)

    def add_task(self, *args, **kwargs):
        return 0

    def update(self, *args, **kwargs):
        pass


@contextmanager
def progress(transient=False, show=True):
    """A rich Progress on stderr; callers add one task per thing they wait on. show=False: draws nothing."""
    if not show:
        yield _NoBars()
        return
    p = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=err,
        transient=transient,
    )
    with p:
        yield p
