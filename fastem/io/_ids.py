"""Number the user and item ids of rating triples: integers by value, other ids as strings."""

import io
import warnings

import numpy as np

from .._text import UNIT_SEPARATOR, decode_labels

__all__ = ["factorize_ints", "factorize_bytes", "has_empty_label", "merge_labels"]

_HASH_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # 2**64 / golden ratio, odd


def factorize_ints(values):
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


def factorize_bytes(values):
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


def has_empty_label(labels):
    """Whether one of the byte strings is empty or only whitespace."""
    return bool((np.char.strip(labels) == b"").any())


def merge_labels(parts):
    """Global sorted labels and codes from the blocks' (labels, codes).

    Empties ``parts``. Integer ids become int64 labels (``'017'`` and
    ``'17'`` merge); other ids str labels, decoded as UTF-8 or else Latin-1.
    """
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
    return decode_labels(distinct), codes


def _integer_labels(labels):
    """``labels`` as int64 if every one is an integer, else None."""
    try:
        with warnings.catch_warnings():
            # NumPy 1.x parses what is no int64 through a float, with this
            # warning, where NumPy 2 raises.
            warnings.simplefilter("error", DeprecationWarning)
            values = np.loadtxt(io.BytesIO(b"\n".join(labels.tolist())), dtype=np.int64,
                                delimiter=UNIT_SEPARATOR.decode(), comments=None,
                                encoding="latin1", ndmin=1)
    except (ValueError, DeprecationWarning):
        return None
    return values if values.shape == labels.shape else None
