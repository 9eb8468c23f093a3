"""The rules of delimited text files, shared by the rating loaders and the command line.

A rating file and a file of (user, item) pairs are read by the same rules:
the delimiter found on the first line, the same test of an integer id (an
optionally signed integer that fits int64), the same test of a number, UTF-8
with a Latin-1 fallback, and lines shown alike in error messages. Each
function takes ``str`` or ``bytes`` and answers in the same type.
"""

import re

import numpy as np

__all__ = [
    "UTF8_BOM", "DELIMITERS", "UNIT_SEPARATOR", "INT64_MIN", "INT64_MAX",
    "detect_delimiter", "split_fields", "parse_int", "is_int", "is_number",
    "decode", "decode_labels", "show_line",
]

UTF8_BOM = b"\xef\xbb\xbf"
# Delimiters tried, in this order, on the first line of a file; a line with
# none of them is split at runs of whitespace.
DELIMITERS = ("::", "\t", ",", ";")
# Multi-byte delimiters are rewritten to this byte, because NumPy's parser
# takes a single character.
UNIT_SEPARATOR = b"\x1f"
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

_INT_PATTERN = r"[+-]?[0-9]+"
_INT = re.compile(_INT_PATTERN)
_INT_BYTES = re.compile(_INT_PATTERN.encode("ascii"))


def detect_delimiter(line):
    """The first of :data:`DELIMITERS` found in ``line``, else empty (whitespace).

    Parameters
    ----------
    line : str or bytes

    Returns
    -------
    str or bytes
        Of the type of ``line``; empty stands for runs of whitespace.
    """
    binary = isinstance(line, bytes)
    for delimiter in DELIMITERS:
        if binary:
            delimiter = delimiter.encode("ascii")
        if delimiter in line:
            return delimiter
    return b"" if binary else ""


def split_fields(line, delimiter):
    """The fields of ``line``: split at ``delimiter``, or at whitespace if it is empty.

    Fields are not stripped; line ends are the caller's.
    """
    return line.split(delimiter) if delimiter else line.split()


def parse_int(token):
    """The integer an id spells (``'017'`` is 17), or None.

    An integer id is an optionally signed run of ASCII digits, without
    surrounding whitespace (strip it first), within the range of int64.

    Parameters
    ----------
    token : str or bytes

    Returns
    -------
    int or None
    """
    pattern = _INT_BYTES if isinstance(token, bytes) else _INT
    if pattern.fullmatch(token) is None:
        return None
    value = int(token)
    return value if INT64_MIN <= value <= INT64_MAX else None


def is_int(token):
    """Whether ``token`` is an integer id (see :func:`parse_int`)."""
    return parse_int(token) is not None


def is_number(token):
    """Whether ``token`` is a number as NumPy's text parser reads one.

    Python's ``float()`` also takes ``'1_0'``; NumPy's parser, which reads
    the data, does not.
    """
    if ("_" if isinstance(token, str) else b"_") in token:
        return False
    try:
        float(token)
    except ValueError:
        return False
    return True


def decode(raw):
    """``raw`` bytes as text: UTF-8, or Latin-1 when they are not UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def decode_labels(labels):
    """An array of byte strings as str: UTF-8, or Latin-1 when one is not UTF-8."""
    try:
        return np.char.decode(labels, "utf-8")
    except UnicodeDecodeError:
        return np.char.decode(labels, "latin-1")


def show_line(line, limit=80):
    """``line`` quoted for an error message, without its line end, cut at ``limit``."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", errors="replace")
    text = line.rstrip("\r\n")
    return repr(text if len(text) <= limit else text[:limit] + "...")
