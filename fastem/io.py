"""Read rating matrices from files: dense text, rating triples, Matrix Market, npz.

Every loader returns a :class:`RatingData`: a CSR matrix whose **stored
entries are the observed ratings** (explicit zeros included; entries that are
not stored are missing) and the raw user and item ids of its rows and columns.
:func:`to_observed` hands the matrix to the estimators without densifying it.

Supported formats
-----------------
``dense``
    The course's files: one whitespace-separated row of numbers per user, with
    0 marking a missing rating (:func:`load_dense_text`).
``triples``
    One rating per line, ``user item rating [timestamp ...]``, separated by
    tabs (MovieLens ``u.data``), commas with or without a header
    (``ratings.csv``), ``::`` (MovieLens ``ratings.dat``), semicolons or
    whitespace (:func:`load_triples`).
``mtx``
    Matrix Market files, through :func:`scipy.io.mmread`.
``npz``
    Sparse matrices saved by :func:`scipy.sparse.save_npz`.

:func:`load` picks the loader from the file name.
"""

import errno
import io
import numbers
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io
import scipy.sparse as sp

from ._data import as_observed, sparse_as_csr

__all__ = [
    "RatingData",
    "to_observed",
    "load",
    "load_dense_text",
    "load_triples",
    "load_matrix_market",
    "load_npz",
    "FORMATS",
]

#: Format names accepted by :func:`load`.
FORMATS = ("dense", "triples", "mtx", "npz")

_EXTENSIONS = {
    ".csv": "triples",
    ".tsv": "triples",
    ".dat": "triples",
    ".data": "triples",
    ".mtx": "mtx",
    ".npz": "npz",
    ".txt": None,  # dense or triples, told apart by the first line
}

# Triples are read in blocks of about this many bytes, cut at a line end: big
# enough that numpy's C parser dominates the time, small enough that a block
# and its parsed columns stay well under a gigabyte.
_CHUNK_BYTES = 64 << 20
_SNIFF_BYTES = 1 << 16
# Delimiters tried, in this order, on the first line of a triples file.
_DETECTED_DELIMITERS = (b"::", b"\t", b",", b";")
# Multi-byte delimiters are rewritten to this byte, because numpy's parser
# takes a single character.
_UNIT_SEPARATOR = b"\x1f"
# String ids are parsed into fixed-width byte fields as wide as the longest
# line of the block; beyond this width numpy sizes the fields itself (slower).
_MAX_FIXED_WIDTH = 256
_UTF8_BOM = b"\xef\xbb\xbf"
_HASH_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # 2**64 / golden ratio, odd
_INT_TOKEN = re.compile(rb"\s*[+-]?[0-9]+\s*")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True, eq=False)
class RatingData:
    """A rating matrix read from a file, with the raw ids of its rows and columns.

    Parameters
    ----------
    matrix : scipy.sparse.csr_matrix of shape (n_users, n_items)
        Float32 or float64. The stored entries are the observed ratings,
        explicit zeros included; entries that are not stored are missing.
        Indices are sorted within each row and no entry is stored twice.
    row_labels : ndarray of shape (n_users,)
        ``row_labels[u]`` is the raw id of user ``u`` (row ``u``).
    col_labels : ndarray of shape (n_items,)
        ``col_labels[i]`` is the raw id of item ``i`` (column ``i``).

    Notes
    -----
    Labels are int64 for integer ids (and for the row and column numbers of
    formats without ids) and str otherwise, in ascending order.
    """

    matrix: sp.csr_matrix
    row_labels: np.ndarray
    col_labels: np.ndarray

    def __post_init__(self):
        n_rows, n_cols = self.matrix.shape
        if self.row_labels.shape != (n_rows,) or self.col_labels.shape != (n_cols,):
            raise ValueError(
                f"labels of shapes {self.row_labels.shape} and "
                f"{self.col_labels.shape} do not match a matrix of shape "
                f"{self.matrix.shape}"
            )

    @property
    def shape(self):
        """``(n_users, n_items)``."""
        return self.matrix.shape

    @property
    def nnz(self):
        """Number of observed ratings."""
        return self.matrix.nnz

    def to_observed(self, dtype=None):
        """Return the observed ratings as :class:`~fastem._data.ObservedData`.

        See :func:`to_observed`.
        """
        return to_observed(self, dtype=dtype)


def to_observed(rating_data, dtype=None):
    """Return the observed ratings of a :class:`RatingData` for the estimators.

    Parameters
    ----------
    rating_data : RatingData
        A loaded rating matrix.
    dtype : {None, float32, float64}, default=None
        Dtype of the values; None keeps the matrix's.

    Returns
    -------
    ObservedData
        The stored entries of ``rating_data.matrix``, explicit zeros
        included. Nothing is densified.
    """
    return as_observed(rating_data.matrix, dtype=dtype)


# --------------------------------------------------------------------------
# Dispatch


def load(path, format=None, **kwargs):
    """Read a rating matrix, choosing the loader from the format or file name.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    format : {None, 'dense', 'triples', 'mtx', 'npz'}, default=None
        None: from the extension (case-insensitive). ``.csv``, ``.tsv``,
        ``.dat`` and ``.data`` are triples, ``.mtx`` is Matrix Market and
        ``.npz`` is scipy's sparse npz. A ``.txt`` file is dense when its first
        non-blank line has more than 4 whitespace-separated fields, and triples
        otherwise (so a dense matrix of at most 4 columns needs
        ``format='dense'``).
    **kwargs
        Passed to the loader: :func:`load_dense_text`, :func:`load_triples`,
        :func:`load_matrix_market` or :func:`load_npz`.

    Returns
    -------
    RatingData

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    IsADirectoryError
        If ``path`` is a folder.
    ValueError
        If the format is unknown or cannot be told from the name, or the file
        is empty or malformed.
    """
    path = _existing_file(path)
    if format is None:
        suffix = path.suffix.lower()
        if suffix not in _EXTENSIONS:
            raise ValueError(
                f"{path}: cannot tell the format from the extension "
                f"{suffix or '(none)'!r}; pass format= one of {FORMATS!r} "
                f"(extensions known: {', '.join(sorted(_EXTENSIONS))})"
            )
        format = _EXTENSIONS[suffix] or _sniff_txt(path)
    loaders = {
        "dense": load_dense_text,
        "triples": load_triples,
        "mtx": load_matrix_market,
        "npz": load_npz,
    }
    if format not in loaders:
        raise ValueError(f"unknown format {format!r}; accepted: {FORMATS!r}")
    return loaders[format](path, **kwargs)


def _sniff_txt(path):
    with open(path, "rb") as f:
        head = f.read(_SNIFF_BYTES)
    line = _first_nonblank_line(head.removeprefix(_UTF8_BOM))
    if line is None:
        raise ValueError(f"{path}: the file is empty")
    return "dense" if len(line.split()) > 4 else "triples"


def _first_nonblank_line(text):
    for line in text.split(b"\n"):
        if line.strip():
            return line
    return None


# --------------------------------------------------------------------------
# Dense text


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
    path = _existing_file(path)
    dtype = _value_dtype(dtype)
    if missing_value is not None and (isinstance(missing_value, bool)
                                      or not isinstance(missing_value, numbers.Real)):
        raise TypeError(f"missing_value must be a number, NaN or None, got "
                        f"{missing_value!r}")
    raw = path.read_bytes().removeprefix(_UTF8_BOM)
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
    matrix = _csr(X[observed], indices, indptr, X.shape, dtype)
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
            if not _is_float(field):
                return ValueError(
                    f"{path}, line {number}: field {k} "
                    f"{field.decode('latin1')!r} is not a number"
                )
    return ValueError(f"{path}: cannot read a dense matrix ({exc})")


# --------------------------------------------------------------------------
# Triples


def load_triples(path, delimiter=None, header=None, dtype=np.float64,
                 columns=(0, 1, 2)):
    """Read ratings given one per line as ``user item rating [more fields]``.

    Parameters
    ----------
    path : str or os.PathLike
        Text file, one rating per line, each with as many fields as the first
        data line. Empty lines are skipped; fields are not quoted.
    delimiter : str or None, default=None
        Field separator. None detects it on the first non-blank line: ``'::'``
        if present, else a tab, a comma, a semicolon, else runs of whitespace.
        ``' '`` stands for runs of whitespace; any other string is used as is.
    header : bool or None, default=None
        Whether the first non-blank line is a header (skipped). None: it is a
        header when its rating field is not a number.
    dtype : {float64, float32}, default=float64
        Dtype of the stored ratings.
    columns : tuple of 3 int, default=(0, 1, 2)
        Positions of the user, item and rating fields; other fields (a
        timestamp, say) are ignored.

    Returns
    -------
    RatingData
        One row per distinct user and one column per distinct item.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file holds no rating, or a line is malformed (a different
        number of fields than the first data line, an empty id, a rating that
        is not a finite number); the message names the file and the 1-based
        line.

    Notes
    -----
    **Ids.** A column whose ids are all integers (optionally signed, fitting
    int64) gets int64 labels in ascending numeric order, so ``'017'`` and
    ``'17'`` are the same id. Any other column keeps its ids as str
    (whitespace around them stripped, UTF-8, or Latin-1 if the file is not
    UTF-8), in ascending code-point order. Users and items are typed
    independently.

    **Duplicates.** When a (user, item) pair occurs more than once, the last
    occurrence in the file wins, as a later rating replaces an earlier one.

    **Speed.** The file is read in 64 MB blocks, each parsed by numpy's C
    parser (:func:`numpy.loadtxt`) into columns, so there is no Python
    object per line; users and items are then numbered without sorting
    when the ids are dense integers. 10 million lines with integer ids take
    about 3.5-5 s of CPU time on one core, memory peaking near 80 bytes a
    line. Ids that are not all integers take a slower path, at roughly half
    that speed: fixed-width byte strings, numbered block by block through a
    64-bit hash (checked, so distinct ids never merge). A malformed line is
    located by re-parsing halves of the failing block, about one more pass
    over that block.
    """
    path = _existing_file(path)
    dtype = _value_dtype(dtype)
    spec = _sniff_triples(path, delimiter, header, _check_columns(columns))
    try:
        users, items, ratings = _read_triples(path, spec, dtype, numeric=spec.numeric)
    except _NotIntegerIds:
        # A later line has an id that is not an integer: read again, as bytes.
        users, items, ratings = _read_triples(path, spec, dtype, numeric=False)
    row_labels, rows = users
    col_labels, cols = items
    matrix = _csr_keep_last(rows, cols, ratings,
                            (row_labels.shape[0], col_labels.shape[0]), dtype)
    return RatingData(matrix, row_labels, col_labels)


class _NotIntegerIds(Exception):
    """Raised inside the integer-id reader when an id is not an integer."""


class _BadBlock(Exception):
    """A block failed one of the checks numpy's parser does not make."""


@dataclass(frozen=True)
class _TriplesSpec:
    path: Path
    delimiter: bytes  # b"" for runs of whitespace
    columns: tuple
    n_fields: int
    data_offset: int  # byte offset of the first data line
    data_line: int  # its 1-based line number
    numeric: bool  # the ids of the first data line are integers

    @property
    def usecols(self):
        # Asking numpy for the last field makes it reject short lines; long
        # lines are caught by counting delimiters.
        last = self.n_fields - 1
        return self.columns + (() if last in self.columns else (last,))

    @property
    def loadtxt_delimiter(self):
        if not self.delimiter:
            return None
        if len(self.delimiter) == 1:
            return self.delimiter.decode("latin1")
        return _UNIT_SEPARATOR.decode("latin1")

    def split(self, line):
        """The fields of one line, as the file defines them."""
        line = line.rstrip(b"\r\n")
        return line.split(self.delimiter) if self.delimiter else line.split()

    def where(self, number):
        return f"{self.path}, line {number}"


def _check_columns(columns):
    columns = tuple(columns)
    if (len(columns) != 3 or len(set(columns)) != 3
            or not all(isinstance(c, (int, np.integer)) and c >= 0 for c in columns)):
        raise ValueError(
            "columns must be 3 distinct non-negative field positions "
            f"(user, item, rating), got {columns!r}"
        )
    return tuple(int(c) for c in columns)


def _sniff_triples(path, delimiter, header, columns):
    if header is not None and not isinstance(header, (bool, np.bool_)):
        raise TypeError(f"header must be True, False or None, got {header!r}")
    if delimiter is not None:
        if not isinstance(delimiter, str) or not delimiter or set(delimiter) & set("\r\n"):
            raise ValueError(
                f"delimiter must be a non-empty str without line breaks, got {delimiter!r}"
            )
        delimiter = b"" if delimiter == " " else delimiter.encode("utf-8")

    with open(path, "rb") as f:
        offset = len(_UTF8_BOM) if f.read(len(_UTF8_BOM)) == _UTF8_BOM else 0
        f.seek(offset)
        number = 0
        lines = []  # (line number, byte offset, line) of the first two non-blank lines
        while len(lines) < 2:
            line = f.readline()
            if not line:
                break
            number += 1
            if line.strip():
                lines.append((number, offset, line))
            offset += len(line)
    if not lines:
        raise ValueError(f"{path}: the file is empty")

    if delimiter is None:
        first = lines[0][2]
        delimiter = next((d for d in _DETECTED_DELIMITERS if d in first), b"")
    spec = _TriplesSpec(path, delimiter, columns, 0, 0, 0, False)

    if header is None:
        fields = spec.split(lines[0][2])
        header = len(fields) > columns[2] and not _is_float(fields[columns[2]])
    if header:
        lines = lines[1:]
    if not lines:
        raise ValueError(f"{path}: no ratings, only a header")
    number, offset, line = lines[0]
    fields = spec.split(line)
    if len(fields) <= max(columns):
        raise ValueError(
            f"{spec.where(number)}: {len(fields)} fields, but columns={columns!r} "
            f"needs at least {max(columns) + 1}: {_show(line)}"
        )
    numeric = all(_is_int(fields[c]) for c in columns[:2])
    return _TriplesSpec(path, delimiter, columns, len(fields), offset, number, numeric)


def _read_triples(path, spec, dtype, numeric):
    """Parse every data line; return (labels, codes) of users and items, and ratings."""
    user_parts, item_parts, rating_parts = [], [], []
    with open(path, "rb") as f:
        f.seek(spec.data_offset)
        for offset, block in _blocks(f):
            try:
                parsed = _parse_block(block, spec, dtype, numeric)
            except (ValueError, _BadBlock):
                first_line = spec.data_line + _count_newlines(f, spec.data_offset, offset)
                _raise_for_block(block, first_line, spec, dtype, numeric)  # always raises
            for parts, part in zip((user_parts, item_parts, rating_parts), parsed):
                parts.append(part)
    if sum(part.shape[0] for part in rating_parts) == 0:
        raise ValueError(f"{path}: no ratings found")
    ratings = _concatenate(rating_parts)
    if numeric:
        return (_factorize_ints(_concatenate(user_parts)),
                _factorize_ints(_concatenate(item_parts)), ratings)
    return _merge_labels(user_parts), _merge_labels(item_parts), ratings


def _blocks(f):
    """Yield (byte offset, block) for blocks of about _CHUNK_BYTES of whole lines."""
    offset = f.tell()
    while True:
        block = f.read(_CHUNK_BYTES)
        if not block:
            return
        if not block.endswith(b"\n"):
            block += f.readline()  # finish the last line
        yield offset, block
        offset += len(block)


def _count_newlines(f, start, stop):
    # Only on error: line numbers are not tracked while all goes well.
    f.seek(start)
    count = 0
    while start < stop:
        chunk = f.read(min(_CHUNK_BYTES, stop - start))
        count += chunk.count(b"\n")
        start += len(chunk)
    return count


def _concatenate(parts):
    # The parts are columns (views) of the blocks' parsed tables; emptying
    # the lists lets the tables go once all three columns are copied out.
    out = np.concatenate(parts)
    parts.clear()
    return out


def _parse_block(block, spec, dtype, numeric):
    """Columns of one block: users, items (int64 or (labels, codes)), ratings.

    Raises ValueError (from numpy) or _BadBlock when a line is malformed.
    """
    if not block or block.isspace():
        empty = np.empty(0, dtype=np.int64)
        ids = empty if numeric else (np.empty(0, dtype="S1"), empty)
        return ids, ids, np.empty(0, dtype=dtype)
    if len(spec.delimiter) > 1:
        block = block.replace(spec.delimiter, _UNIT_SEPARATOR)
    if numeric:
        id_dtype = np.int64
    else:
        width = _longest_line(block)
        id_dtype = f"S{width}" if width <= _MAX_FIXED_WIDTH else None
    fields = [("u", id_dtype), ("i", id_dtype), ("r", dtype)]
    if len(spec.usecols) == 4:
        fields.append(("x", "S1"))  # parsed only to check the line is long enough
    if id_dtype is None:
        # Very long lines: let numpy size the id fields (two passes).
        ids = np.loadtxt(io.BytesIO(block), dtype=bytes, usecols=spec.columns[:2],
                         delimiter=spec.loadtxt_delimiter, comments=None,
                         encoding="latin1", ndmin=2)
        rest = np.loadtxt(io.BytesIO(block), dtype=fields[2:], usecols=spec.usecols[2:],
                          delimiter=spec.loadtxt_delimiter, comments=None,
                          encoding="latin1", ndmin=1)
        users, items, ratings = ids[:, 0], ids[:, 1], rest["r"]
    else:
        table = np.loadtxt(io.BytesIO(block), dtype=fields, usecols=spec.usecols,
                           delimiter=spec.loadtxt_delimiter, comments=None,
                           encoding="latin1", ndmin=1)
        users, items, ratings = table["u"], table["i"], table["r"]
    if not _fields_match(block, spec, ratings.shape[0]):
        raise _BadBlock("a line has more fields than the first data line")
    if not np.isfinite(ratings).all():
        raise _BadBlock("a rating is not finite")
    if numeric:
        return users, items, ratings  # views of the table, copied out at the end
    users, items = _factorize_bytes(users), _factorize_bytes(items)
    if _has_empty_label(users[0]) or _has_empty_label(items[0]):
        raise _BadBlock("an id is empty")
    return users, items, ratings


def _longest_line(block):
    ends = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == ord("\n"))
    starts = np.concatenate(([0], ends + 1))
    ends = np.concatenate((ends, [len(block)]))
    return max(1, int((ends - starts).max()))


def _fields_match(block, spec, n_lines):
    """Whether the ``n_lines`` data lines of ``block`` hold ``spec.n_fields`` fields in all."""
    if spec.delimiter:
        delimiter = _UNIT_SEPARATOR if len(spec.delimiter) > 1 else spec.delimiter
        # Short lines were refused by numpy; the count catches long ones.
        return block.count(delimiter) == n_lines * (spec.n_fields - 1)
    # Runs of whitespace: count the starts of fields (control bytes count as space).
    space = np.frombuffer(block, dtype=np.uint8) <= 32
    starts = int(np.count_nonzero(space[:-1] > space[1:])) + int(not space[0])
    return starts == n_lines * spec.n_fields


def _factorize_bytes(values):
    """Distinct byte strings of ``values`` (in no particular order) and codes."""
    n, width = values.shape[0], values.dtype.itemsize
    if n == 0:
        return values[:0], np.empty(0, dtype=np.int64)
    # Sorting byte strings is slow: sort 64-bit keys instead, the bytes
    # themselves for ids of up to 8 bytes, else a hash of their 8-byte words.
    n_words = -(-width // 8)
    padded = np.zeros((n, 8 * n_words), dtype=np.uint8)
    padded[:, :width] = np.ascontiguousarray(values).view(np.uint8).reshape(n, width)
    words = padded.view(np.uint64)
    used = np.flatnonzero(words.any(axis=0))  # the fields are narrower than the lines
    words = words[:, :used[-1] + 1] if used.shape[0] else words[:, :1]
    if words.shape[1] == 1:
        keys = words[:, 0].copy()
    else:
        keys = words[:, 0] * _HASH_MULTIPLIER
        for j in range(1, words.shape[1]):
            keys ^= keys >> np.uint64(29)
            keys += words[:, j]
            keys *= _HASH_MULTIPLIER
    order = np.argsort(keys)
    sorted_keys = keys[order]
    new = np.empty(n, dtype=bool)
    new[0] = True
    np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=new[1:])
    codes = np.empty(n, dtype=np.int64)
    codes[order] = np.cumsum(new) - 1
    first = order[new]
    if words.shape[1] > 1:
        # Two ids with one hash would merge: check every id against the
        # representative of its code, and sort the strings if one differs.
        representative = first[codes]
        for j in range(words.shape[1]):
            if (words[representative, j] != words[:, j]).any():
                return np.unique(values, return_inverse=True)
    return values[first], codes


def _has_empty_label(labels):
    return bool((np.char.strip(labels) == b"").any())


def _merge_labels(parts):
    """Global sorted labels and codes from the blocks' (labels, codes)."""
    labels = np.char.strip(np.concatenate([part[0] for part in parts]))
    distinct, inverse = np.unique(labels, return_inverse=True)
    codes, start = [], 0
    for block_labels, block_codes in parts:
        codes.append(inverse[start:start + block_labels.shape[0]][block_codes])
        start += block_labels.shape[0]
    parts.clear()
    codes = np.concatenate(codes)
    as_ints = _integer_labels(distinct)
    if as_ints is not None:
        # Every id is an integer: number them, merging spellings like '017' and '17'.
        labels, renumber = np.unique(as_ints, return_inverse=True)
        return labels, renumber[codes]
    try:
        return np.char.decode(distinct, "utf-8"), codes
    except UnicodeDecodeError:
        return np.char.decode(distinct, "latin-1"), codes


def _integer_labels(labels):
    """``labels`` as int64 if every one is an integer, else None."""
    try:
        with warnings.catch_warnings():
            # NumPy 1.x parses what is no int64 through a float, with this
            # warning, where NumPy 2 raises.
            warnings.simplefilter("error", DeprecationWarning)
            values = np.loadtxt(io.BytesIO(b"\n".join(labels.tolist())), dtype=np.int64,
                                delimiter=_UNIT_SEPARATOR.decode(), comments=None,
                                encoding="latin1", ndmin=1)
    except (ValueError, DeprecationWarning):
        return None
    return values if values.shape == labels.shape else None


def _factorize_ints(values):
    """Sorted distinct values and the index of each value among them."""
    lo, hi = int(values.min()), int(values.max())
    span = hi - lo + 1
    if span <= 4 * values.shape[0] + (1 << 20):
        # Dense ids (the usual 1..n): a lookup table beats sorting.
        offsets = values - lo
        present = np.zeros(span, dtype=bool)
        present[offsets] = True
        index = np.cumsum(present, dtype=np.int64) - 1
        return np.flatnonzero(present).astype(np.int64) + lo, index[offsets]
    return np.unique(values, return_inverse=True)


def _raise_for_block(block, first_line, spec, dtype, numeric):
    """Find the first bad line of a block that failed to parse, and raise."""
    starts = np.concatenate(
        ([0], np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == ord("\n")) + 1))
    if starts[-1] == len(block):
        starts = starts[:-1]
    bounds = np.append(starts, len(block))

    def fails(lo, hi):
        try:
            _parse_block(block[bounds[lo]:bounds[hi]], spec, dtype, numeric)
        except (ValueError, _BadBlock) as exc:
            return exc
        return None

    # Lines [0, lo) parse, lines [0, hi) do not: halve until one line is left.
    lo, hi = 0, starts.shape[0]
    error = None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        error = fails(lo, mid)
        if error is not None:
            hi = mid
        else:
            lo = mid
    error = fails(lo, lo + 1) or error
    line = block[bounds[lo]:bounds[lo + 1]]
    where = spec.where(first_line + lo)
    fields = spec.split(line)
    if len(fields) != spec.n_fields:
        raise ValueError(
            f"{where}: expected {spec.n_fields} fields as on line {spec.data_line}, "
            f"found {len(fields)}: {_show(line)}"
        )
    user, item, rating = (fields[c].strip() for c in spec.columns)
    for name, value in (("user", user), ("item", item)):
        if not value:
            raise ValueError(f"{where}: the {name} id is empty: {_show(line)}")
    if not _is_float(rating):
        raise ValueError(
            f"{where}: rating {rating.decode('latin1')!r} is not a number: {_show(line)}"
        )
    with np.errstate(over="ignore"):
        if not np.isfinite(dtype.type(float(rating))):
            raise ValueError(
                f"{where}: rating {rating.decode('latin1')!r} is not finite "
                f"in {dtype}: {_show(line)}"
            )
    if numeric and not (_is_int(user) and _is_int(item)):
        raise _NotIntegerIds
    raise ValueError(f"{where}: cannot parse {_show(line)} ({error})")


def _is_int(token):
    if _INT_TOKEN.fullmatch(token) is None:
        return False
    return _INT64_MIN <= int(token) <= _INT64_MAX


def _is_float(token):
    # Python's float() also takes '1_0'; numpy's parser, used for the data, does not.
    if b"_" in token:
        return False
    try:
        float(token)
    except ValueError:
        return False
    return True


def _show(line, limit=80):
    text = line.rstrip(b"\r\n").decode("utf-8", errors="replace")
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _csr_keep_last(rows, cols, values, shape, dtype):
    """CSR matrix of the entries; of a repeated (row, col) the last one stays."""
    n_rows, n_cols = shape
    n = values.shape[0]
    # Keys row << col_bits | col order the entries as CSR does; shifts and
    # masks are much cheaper than multiplications and divisions.
    col_bits = max(1, (n_cols - 1).bit_length())
    pos_bits = max(1, (n - 1).bit_length())
    keys = (rows << col_bits) | cols
    if n > 1 and not (keys[1:] > keys[:-1]).all():
        if (n_rows - 1).bit_length() + col_bits + pos_bits < 63:
            # Sorting key << pos_bits | position orders by key, then by file
            # order, several times faster than a stable argsort.
            packed = (keys << pos_bits) | np.arange(n, dtype=np.int64)
            packed.sort()
            keys = packed >> pos_bits
            order = packed & ((1 << pos_bits) - 1)
            del packed
        else:
            order = np.argsort(keys, kind="stable")
            keys = keys[order]
        last = np.empty(n, dtype=bool)
        np.not_equal(keys[1:], keys[:-1], out=last[:-1])
        last[-1] = True
        if not last.all():
            keys, order = keys[last], order[last]
        values = values[order]
    rows = keys >> col_bits
    indices = keys & ((1 << col_bits) - 1)
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    return _csr(values, indices, indptr, shape, dtype)


# --------------------------------------------------------------------------
# Matrix Market and npz


def load_matrix_market(path, *, dtype=np.float64):
    """Read a Matrix Market file with :func:`scipy.io.mmread`.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.mtx`` file. In the coordinate format the stored entries are the
        observed ratings (explicit zeros included) and repeated entries are
        summed, as scipy does; in the array format every entry is observed.
        A pattern matrix stores ones.
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
        If the file is empty or not Matrix Market, holds complex numbers, or
        stores a value that is not finite.
    """
    path = _existing_file(path)
    dtype = _value_dtype(dtype)
    _check_not_empty(path)
    try:
        matrix = scipy.io.mmread(str(path))
    except (ValueError, OSError, IndexError) as exc:
        raise ValueError(f"{path}: not a readable Matrix Market file ({exc})") from exc
    return _from_matrix(path, matrix, dtype)


def load_npz(path, *, dtype=np.float64):
    """Read a sparse matrix saved by :func:`scipy.sparse.save_npz`.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.npz`` file. Its stored entries are the observed ratings (explicit
        zeros included); repeated entries of a COO matrix are summed, as scipy
        does.
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
        If the file is empty or not a scipy sparse npz file, holds a malformed
        matrix (index arrays out of range or inconsistent), or stores a value
        that is not finite.
    """
    path = _existing_file(path)
    dtype = _value_dtype(dtype)
    _check_not_empty(path)
    try:
        matrix = sp.load_npz(path)
    except (ValueError, OSError, KeyError, EOFError) as exc:
        raise ValueError(f"{path}: not a scipy sparse npz file ({exc})") from exc
    return _from_matrix(path, matrix, dtype)


def _from_matrix(path, matrix, dtype):
    if matrix.ndim != 2 or min(matrix.shape) < 1:
        raise ValueError(f"{path}: expected a non-empty 2-D matrix, got shape {matrix.shape}")
    if np.dtype(matrix.dtype).kind not in "biuf":
        raise ValueError(f"{path}: ratings must be real numbers, got dtype {matrix.dtype}")
    if sp.issparse(matrix):
        # The file's index arrays are checked before scipy's compiled code
        # reads them: a crafted file could otherwise make it read out of bounds.
        try:
            csr = sp.csr_matrix(sparse_as_csr(matrix, "the file is damaged"), copy=True)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path}: malformed sparse matrix: {exc}") from None
        csr.sum_duplicates()  # also sorts the indices; explicit zeros stay
        values, indices, indptr = csr.data, csr.indices, csr.indptr
    else:
        # A dense (array) file lists every entry: all are observed.
        n_rows, n_cols = matrix.shape
        values = np.asarray(matrix).ravel()
        indices = np.tile(np.arange(n_cols, dtype=np.int64), n_rows)
        indptr = np.arange(n_rows + 1, dtype=np.int64) * n_cols
    if not np.isfinite(values).all():
        row = np.searchsorted(indptr, np.flatnonzero(~np.isfinite(values))[0], side="right") - 1
        raise ValueError(f"{path}: row {row} stores a value that is not finite")
    return RatingData(_csr(values, indices, indptr, matrix.shape, dtype),
                      np.arange(matrix.shape[0], dtype=np.int64),
                      np.arange(matrix.shape[1], dtype=np.int64))


# --------------------------------------------------------------------------
# Checks and CSR assembly shared by the loaders


def _existing_file(path):
    path = Path(os.fspath(path))
    if not path.exists():
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(path))
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "Is a folder, not a ratings file", str(path))
    return path


def _check_not_empty(path):
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: the file is empty")


def _value_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


def _csr(values, indices, indptr, shape, dtype):
    """A csr_matrix on these arrays, with int32 indices when they fit."""
    index_dtype = np.int32 if max(values.shape[0], shape[1]) < 2**31 else np.int64
    return sp.csr_matrix(
        (values.astype(dtype, copy=False), indices.astype(index_dtype, copy=False),
         indptr.astype(index_dtype, copy=False)),
        shape=shape, copy=False,
    )
