"""The checks every loader makes on the file it is given, before reading it."""

import errno
import os
from pathlib import Path

__all__ = ["existing_file", "check_not_empty"]


def existing_file(path):
    """``path`` as a Path to an existing file; FileNotFoundError or IsADirectoryError."""
    path = Path(os.fspath(path))
    if not path.exists():
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(path))
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "Is a folder, not a ratings file", str(path))
    return path


def check_not_empty(path):
    """Raise ValueError if the file at ``path`` holds no byte."""
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: the file is empty")
