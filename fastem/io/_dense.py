"""Read the course's dense text files: one whitespace-separated row of numbers per user."""

import io
import numbers

import numpy as np

from ._files import existing_file
from ._ratings import RatingData, build_csr, rating_dtype
from .._text import UTF8_BOM, is_number

__all__ = ["load_dense_text"]


def load_dense_text(path, missing_value=0, *, dtype=np.float64):
    """Read a dense whitespace-separated matrix, as the course's data files.

    Parameters
    ----------
    path : str or os.PathLike
        Text file with one row of numbers per line, all rows of the same
        length. Blank lines are skipped.
    missing_value : float or None, default=0
        Entries equal to it are missing (NaN matches NaN); None: every entry
        is observed.
    dtype : {float64, float32}, default=float64
        Dtype of the stored ratings.

    Returns
    -------
    RatingData
        Labels are the row numbers ``0..n-1`` and column numbers ``0..d-1``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is empty, a line has a different number of fields than
        the first, or an observed entry is not a finite number; the message
        names the file and the 1-based line.
    """
    path = existing_file(path)
    dtype = rating_dtype(dtype)
    if missing_value is not None and (isinstance(missing_value, bool)
                                      or not isinstance(missing_value, numbers.Real)):
        raise TypeError(f"missing_value must be a number, NaN or None, got "
                        f"{missing_value!r}")
    raw = path.read_bytes().removeprefix(UTF8_BOM)
    if not raw.strip():
        raise ValueError(f"{path}: the file is empty")
    try:
        X = np.loadtxt(io.BytesIO(raw), dtype=np.float64, comments=None, ndmin=2,
                       encoding="latin1")
    except ValueError as exc:
        raise _dense_error(path, raw, exc) from None
    if missing_value is None:
        observed = np.ones(X.shape, dtype=bool)
    elif np.isnan(missing_value):
        observed = ~np.isnan(X)
    else:
        observed = X != missing_value
    bad = observed & ~np.isfinite(X)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ValueError(
            f"{path}, line {_nonblank_line_numbers(raw)[row]}: field {col + 1} "
            f"is {X[row, col]}, not a finite rating"
        )
    counts = observed.sum(axis=1)
    indptr = np.zeros(X.shape[0] + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    indices = np.nonzero(observed)[1]
    matrix = build_csr(X[observed], indices, indptr, X.shape, dtype)
    return RatingData(matrix, np.arange(X.shape[0], dtype=np.int64),
                      np.arange(X.shape[1], dtype=np.int64))


def _nonblank_line_numbers(raw):
    """1-based numbers of the non-blank lines, the rows numpy returns."""
    return [k for k, line in enumerate(raw.split(b"\n"), 1) if line.strip()]


def _dense_error(path, raw, exc):
    # numpy counts rows, not lines; find the culprit ourselves (files are small).
    width = None
    for number, line in enumerate(raw.split(b"\n"), 1):
        fields = line.split()
        if not fields:
            continue
        if width is None:
            width = len(fields)
        if len(fields) != width:
            return ValueError(
                f"{path}, line {number}: expected {width} fields as on the "
                f"first line, found {len(fields)}"
            )
        for k, field in enumerate(fields, 1):
            if not is_number(field):
                return ValueError(
                    f"{path}, line {number}: field {k} "
                    f"{field.decode('latin1')!r} is not a number"
                )
    return ValueError(f"{path}: cannot read a dense matrix ({exc})")
