"""The ``restorekit`` command group: a :class:`RestorekitError` or a file-system error becomes one
clear line (what, where, what to do; exit code 1), never a traceback; restorekit's own warnings
print as one line without source."""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import warnings
from pathlib import Path

import click

from restorekit.errors import RestorekitError

_PACKAGE = str(Path(__file__).resolve().parents[1])  # the restorekit package


def _ours(category: type[Warning], filename: str) -> bool:
    """Whether a warning is restorekit's own (its class, or raised in its code)."""
    return category.__module__.startswith("restorekit") or str(filename).startswith(_PACKAGE)


_OS_HINTS = {
    errno.ENOSPC: "free some space, or write elsewhere (-o / --out)",
    errno.EDQUOT: "free some space, or write elsewhere (-o / --out)",
    errno.EACCES: "choose a folder you may write to (-o / --out), or fix its permissions",
    errno.EPERM: "choose a folder you may write to (-o / --out), or fix its permissions",
    errno.EROFS: "the file system is read-only: write elsewhere (-o / --out)",
}


def _file_system_message(error: OSError) -> str:
    """A file-system error in words: what, where, and what to do."""
    where = f" ({error.filename})" if error.filename else ""
    hint = _OS_HINTS.get(error.errno or 0, "check the path and the disk")
    return f"{error.strerror or error}{where}; {hint}. Files already finished are complete."


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit raises no second BrokenPipeError
    (Python's documented recipe)."""
    with contextlib.suppress(OSError, ValueError):  # no descriptor: a test's captured output
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


class _Group(click.Group):
    """Print :class:`RestorekitError` as one clear message (exit code 1), never a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        with warnings.catch_warnings():
            shown = warnings.showwarning

            def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001, ANN202
                if _ours(category, filename):  # restorekit's own: one clear line, no source
                    click.echo(f"warning: {message}", err=True)
                else:
                    shown(message, category, filename, lineno, file, line)

            warnings.showwarning = show
            try:
                return super().invoke(ctx)
            except RestorekitError as error:
                raise click.ClickException(str(error)) from None
            except BrokenPipeError:  # the reader left (`restorekit models | head`): stop quietly,
                _silence_stdout()  # with the shells' code for it (128 + SIGPIPE), not success
                raise SystemExit(141) from None
            except OSError as error:  # disk full, read-only or unwritable folders, ...
                raise click.ClickException(_file_system_message(error)) from None


@click.group(cls=_Group)
@click.version_option(package_name="restorekit")
def main() -> None:
    """Image restoration: self-supervised denoising and super-resolution."""
