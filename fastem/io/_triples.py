"""Read rating triples: one ``user item rating [more fields]`` line per rating."""

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._files import existing_file
from ._ids import factorize_bytes, factorize_ints, has_empty_label, merge_labels
from ._ratings import RatingData, check_duplicates_option, csr_of_entries, rating_dtype
from .._text import (UNIT_SEPARATOR, UTF8_BOM, detect_delimiter, is_int, is_number,
                    show_line, split_fields)

__all__ = ["load_triples"]

# Triples are read in blocks of about this many bytes, cut at a line end: big
# enough that numpy's C parser dominates the time, small enough that a block
# and its parsed columns stay well under a gigabyte.
_CHUNK_BYTES = 64 << 20
# String ids are parsed into fixed-width byte fields as wide as the longest
# line of the block; beyond this width numpy sizes the fields itself (slower).
_MAX_FIXED_WIDTH = 256


def load_triples(path, delimiter=None, header=None, dtype=np.float64,
                 columns=(0, 1, 2), duplicates="error"):
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
    duplicates : {'error', 'last'}, default='error'
        A (user, item) pair on more than one line: 'error' refuses the file
        (a ValueError naming how many lines repeat a pair, and the first
        pair); 'last' keeps the last line of each pair, as a later rating
        replaces an earlier one, with a ``fastem.DuplicateRatingsWarning``
        saying how many were dropped.

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

    **Duplicates.** A pair is one rating, never a sum: see ``duplicates``.

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
    path = existing_file(path)
    dtype = rating_dtype(dtype)
    check_duplicates_option(duplicates)
    spec = _sniff_triples(path, delimiter, header, _check_columns(columns))
    try:
        users, items, ratings = _read_triples(path, spec, dtype, numeric=spec.numeric)
    except _NotIntegerIds:
        # A later line has an id that is not an integer: read again, as bytes.
        users, items, ratings = _read_triples(path, spec, dtype, numeric=False)
    row_labels, rows = users
    col_labels, cols = items
    matrix = csr_of_entries(rows, cols, ratings, (row_labels.shape[0], col_labels.shape[0]),
                            dtype, duplicates=duplicates, path=path,
                            labels=(row_labels, col_labels))
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
        return UNIT_SEPARATOR.decode("latin1")

    def split(self, line):
        """The fields of one line, as the file defines them."""
        line = line.rstrip(b"\r\n")
        return split_fields(line, self.delimiter)

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
        offset = len(UTF8_BOM) if f.read(len(UTF8_BOM)) == UTF8_BOM else 0
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
        delimiter = detect_delimiter(lines[0][2])
    spec = _TriplesSpec(path, delimiter, columns, 0, 0, 0, False)

    if header is None:
        fields = spec.split(lines[0][2])
        header = len(fields) > columns[2] and not is_number(fields[columns[2]])
    if header:
        lines = lines[1:]
    if not lines:
        raise ValueError(f"{path}: no ratings, only a header")
    number, offset, line = lines[0]
    fields = spec.split(line)
    if len(fields) <= max(columns):
        raise ValueError(
            f"{spec.where(number)}: {len(fields)} fields, but columns={columns!r} "
            f"needs at least {max(columns) + 1}: {show_line(line)}"
        )
    numeric = all(is_int(fields[c].strip()) for c in columns[:2])
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
        return (factorize_ints(_concatenate(user_parts)),
                factorize_ints(_concatenate(item_parts)), ratings)
    return merge_labels(user_parts), merge_labels(item_parts), ratings


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
        block = block.replace(spec.delimiter, UNIT_SEPARATOR)
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
    users, items = factorize_bytes(users), factorize_bytes(items)
    if has_empty_label(users[0]) or has_empty_label(items[0]):
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
        delimiter = UNIT_SEPARATOR if len(spec.delimiter) > 1 else spec.delimiter
        # Short lines were refused by numpy; the count catches long ones.
        return block.count(delimiter) == n_lines * (spec.n_fields - 1)
    # Runs of whitespace: count the starts of fields (control bytes count as space).
    space = np.frombuffer(block, dtype=np.uint8) <= 32
    starts = int(np.count_nonzero(space[:-1] > space[1:])) + int(not space[0])
    return starts == n_lines * spec.n_fields


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
            f"found {len(fields)}: {show_line(line)}"
        )
    user, item, rating = (fields[c].strip() for c in spec.columns)
    for name, value in (("user", user), ("item", item)):
        if not value:
            raise ValueError(f"{where}: the {name} id is empty: {show_line(line)}")
    if not is_number(rating):
        raise ValueError(
            f"{where}: rating {rating.decode('latin1')!r} is not a number: {show_line(line)}"
        )
    with np.errstate(over="ignore"):
        if not np.isfinite(dtype.type(float(rating))):
            raise ValueError(
                f"{where}: rating {rating.decode('latin1')!r} is not finite "
                f"in {dtype}: {show_line(line)}"
            )
    if numeric and not (is_int(user) and is_int(item)):
        raise _NotIntegerIds
    raise ValueError(f"{where}: cannot parse {show_line(line)} ({error})")
