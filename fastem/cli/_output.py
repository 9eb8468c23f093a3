"""Outputs and errors: atomic output files, one-line error messages, exit statuses.

Every error is one line on stderr, ``fastem: error: ...``, with exit status
1 (2 for a bad command line, 130 when interrupted), never a traceback.
Outputs are written to a temporary file in the destination folder, then
renamed to their name, so an interrupted run leaves no partial file; an
existing file is replaced only with ``force``.
"""

import contextlib
import os
import sys
import tempfile
from pathlib import Path

from .. import ModelFileError

__all__ = ["EXIT_ERROR", "EXIT_USAGE", "EXIT_INTERRUPTED", "EXIT_BROKEN_PIPE",
           "CommandError", "check_output", "atomic_output", "warn", "error_message"]

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a command killed by it


class CommandError(Exception):
    """An error reported to the user as one line, without a traceback."""


def check_output(path, force):
    """Fail before any work if ``path`` cannot be written as an output."""
    if path == "-":
        return
    target = Path(path)
    if target.is_dir():
        raise CommandError(f"{path} is a folder; name an output file")
    if target.exists() and not force:
        raise CommandError(f"{path} exists; pass --force to replace it")
    if not target.absolute().parent.is_dir():
        raise CommandError(f"cannot write {path}: folder {target.parent} does not exist")


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_output(path, force, binary=False):
    """A file to write ``path`` through: a temporary file renamed at the end.

    ``'-'`` is stdout (text only). Without ``force`` an existing ``path``
    is never replaced, not even one that appears while the output is written.
    """
    if path == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    check_output(path, force)
    target = Path(path).absolute()
    descriptor, temporary = tempfile.mkstemp(dir=target.parent,
                                             prefix=f".{target.name}.", suffix=".part")
    try:
        mode = "wb" if binary else "w"
        encoding = None if binary else "utf-8"
        with os.fdopen(descriptor, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp makes the file private; give it the usual permissions.
        os.chmod(temporary, 0o666 & ~_umask())
        if force:
            os.replace(temporary, target)
            return
        try:
            # A hard link fails if the name exists, so nothing is ever replaced.
            os.link(temporary, target)
        except FileExistsError:
            raise CommandError(f"{path} exists; pass --force to replace it") from None
        except OSError:
            # No hard links on this file system: check, then rename.
            if target.exists():
                raise CommandError(f"{path} exists; pass --force to replace it") from None
            os.replace(temporary, target)
        else:
            os.unlink(temporary)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def warn(message):
    """Print a warning on stderr, as one line."""
    print(f"fastem: warning: {message}", file=sys.stderr, flush=True)


def error_message(exc):
    """One line describing ``exc`` for the user."""
    if isinstance(exc, FileNotFoundError) and exc.filename is not None:
        return f"{exc.filename}: no such file or directory"
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    if isinstance(exc, MemoryError):
        return "out of memory; try smaller data, float32 ratings or a smaller K"
    if isinstance(exc, (CommandError, ModelFileError, ValueError, TypeError, OSError)):
        return str(exc)
    return f"unexpected {type(exc).__name__}: {exc}"
