"""Synthetic rating matrices shaped like collaborative-filtering data.

The generator builds the CSR arrays of :class:`~fastem.ObservedData`
directly: a Netflix-Prize-sized matrix (480,189 x 17,770, 100 million
ratings) never exists in dense form.
"""

import numpy as np

from ._observed import ObservedData
from ._validation import index_dtype as index_dtype_for
from ._validation import invalid, is_real

__all__ = [
    "NETFLIX_N_USERS",
    "NETFLIX_N_ITEMS",
    "NETFLIX_N_RATINGS",
    "netflix_shape",
    "make_ratings",
]

# The Netflix Prize training set.
NETFLIX_N_USERS = 480_189
NETFLIX_N_ITEMS = 17_770
NETFLIX_N_RATINGS = 100_480_507

# Shape of the synthetic data, chosen to resemble the Netflix Prize set: the
# most popular item collects about 0.3% of the ratings, and the mean number of
# ratings per user is about twice the median (log-normal sigma 1.25).
_ZIPF_EXPONENT = 1.0
_ZIPF_OFFSET = 400  # r0 = 1 + n_items // 400
_ACTIVITY_SIGMA = 1.25
_GLOBAL_MEAN = 3.6
_ITEM_SD = 0.5
_TASTE_SD = 0.9
_NOISE_SD = 0.75

# Duplicate (user, item) draws are redrawn for a few rounds from a popularity
# law whose exponent tapers to 0 (uniform), so that heavy users, who already
# hold most of the popular items, still find new ones quickly.
_TAPER_ROUNDS = 8
_MAX_ROUNDS = 24
_CHUNK = 1 << 22  # entries per block when filling the value arrays


def netflix_shape():
    """Shape and size of the Netflix Prize training set.

    Returns
    -------
    n_users, n_items, n_ratings : int
        480,189 users, 17,770 items and 100,480,507 ratings.
    """
    return NETFLIX_N_USERS, NETFLIX_N_ITEMS, NETFLIX_N_RATINGS


def make_ratings(n_users, n_items, n_ratings, *, n_groups=12, random_state=0,
                 dtype=np.float64, user_sd=0.0, taste_sd=_TASTE_SD, noise_sd=_NOISE_SD):
    """Synthetic 1..5 ratings with planted taste groups, in CSR form.

    Parameters
    ----------
    n_users : int
        Number of rows, at least 1.
    n_items : int
        Number of columns, at least 1.
    n_ratings : int
        Number of observed entries, between 0 and ``n_users * n_items``.
        The result holds exactly this many, with no (user, item) pair twice.
    n_groups : int, default=12
        Number of taste groups; each user belongs to one, drawn uniformly.
    random_state : int, default=0
        Seed of ``numpy.random.default_rng``; the same arguments always give
        the same matrix.
    dtype : {float64, float32}, default=float64
        Dtype of the stored ratings.
    user_sd : float, default=0.0
        Standard deviation of a per-user offset added to all of a user's
        ratings (some users rate everything high). The default draws none and
        leaves the matrix what it was without the option.
    taste_sd : float, default=0.9
        Standard deviation of the groups' tastes around the item means.
    noise_sd : float, default=0.75
        Standard deviation of the noise of each rating.

    Returns
    -------
    ObservedData
        Ratings as integers 1..5 stored as floats, rows sorted by column.
        Indices and indptr are int32 when ``n_ratings`` fits, else int64.

    Notes
    -----
    Item popularity follows a shifted Zipf law, weight ``1 / (rank + r0)``
    for rank 0, 1, ... with ``r0 = 1 + n_items // 400``, over a random order
    of the items. User activity is log-normal (sigma 1.25), so a few users
    rate a great many items; every user rates at least one item when ``n_ratings >= n_users``
    and none rates more than ``n_items``. Each user draws distinct items by
    popularity: duplicate draws are redrawn from a popularity law that
    flattens towards uniform over a few rounds, and the few users still
    short after that get uniformly random unseen items.

    Group ``g`` has a mean rating per item, ``3.6 + b_i + t_gi`` with
    ``b_i ~ N(0, 0.5^2)`` and ``t_gi ~ N(0, taste_sd^2)``; a rating is
    ``clip(round(mean + b_u + e), 1, 5)`` with ``b_u ~ N(0, user_sd^2)`` and
    ``e ~ N(0, noise_sd^2)``. Real rating sets look more like a few weak
    tastes on top of strong user and item offsets (``fastem demo`` uses
    ``n_groups=4, user_sd=0.5, taste_sd=0.25, noise_sd=0.8``).

    Cost: time O(n_ratings log n_ratings) and a peak of about 30 bytes per
    rating (the result itself takes 12 in float64 with int32 indices). On
    480,189 x 17,770, 20 million ratings take about 3-5 s and 0.6 GB, and
    the Netflix Prize size (100 million) about 30 s and 2.7 GB.

    Examples
    --------
    >>> from fastem.datasets import make_ratings
    >>> X = make_ratings(1000, 200, 20_000, random_state=0)
    >>> X.shape, X.nnz
    ((1000, 200), 20000)
    """
    n_users, n_items, n_ratings, n_groups = (
        _check_count(n_users, "n_users", 1),
        _check_count(n_items, "n_items", 1),
        _check_count(n_ratings, "n_ratings", 0),
        _check_count(n_groups, "n_groups", 1),
    )
    if n_ratings > n_users * n_items:
        raise ValueError(
            f"n_ratings={n_ratings} exceeds the {n_users} x {n_items} = "
            f"{n_users * n_items} entries of the matrix"
        )
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    for name, value in (("user_sd", user_sd), ("taste_sd", taste_sd),
                        ("noise_sd", noise_sd)):
        if not (is_real(value) and 0 <= value < np.inf):
            raise invalid(name, value, "use a standard deviation >= 0")
    rng = np.random.default_rng(random_state)

    popularity = 1.0 / (np.arange(n_items) + 1.0 + n_items // _ZIPF_OFFSET)
    popularity = popularity[rng.permutation(n_items)]
    counts = _user_counts(rng, n_users, n_items, n_ratings)
    keys = _distinct_keys(rng, counts, n_items, popularity)

    index_dtype = index_dtype_for(n_ratings, n_items)
    row_starts = np.arange(n_users + 1, dtype=np.int64) * n_items
    indptr = np.searchsorted(keys, row_starts).astype(index_dtype)

    item_effect = rng.normal(0.0, _ITEM_SD, size=n_items)
    group_means = (
        _GLOBAL_MEAN + item_effect + rng.normal(0.0, taste_sd, size=(n_groups, n_items))
    ).ravel()
    group_of_user = rng.integers(n_groups, size=n_users)
    user_offset = None
    if user_sd > 0:
        # From a generator of its own: the other draws stay those without it.
        user_offset = rng.spawn(1)[0].normal(0.0, user_sd, size=n_users)
    indices = np.empty(n_ratings, dtype=index_dtype)
    data = np.empty(n_ratings, dtype=dtype)
    # Blocks keep the temporaries small, so the peak stays near the output size.
    for start in range(0, n_ratings, _CHUNK):
        block = keys[start:start + _CHUNK]
        users = block // n_items
        items = block - users * n_items
        indices[start:start + block.shape[0]] = items
        ratings = group_means[group_of_user[users] * n_items + items]
        if user_offset is not None:
            ratings += user_offset[users]
        ratings += rng.normal(0.0, noise_sd, size=block.shape[0])
        np.rint(ratings, out=ratings)
        np.clip(ratings, 1.0, 5.0, out=ratings)
        data[start:start + block.shape[0]] = ratings
    del keys
    return ObservedData(data, indices, indptr, n_items, copy=False)


def _check_count(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return int(value)


def _user_counts(rng, n_users, n_items, n_ratings):
    """Ratings per user: log-normal activity, summing to n_ratings, <= n_items."""
    activity = rng.lognormal(0.0, _ACTIVITY_SIGMA, size=n_users)
    base = 1 if n_ratings >= n_users else 0
    counts = base + rng.multinomial(n_ratings - base * n_users, activity / activity.sum())
    # A user cannot rate more items than exist: hand the excess to the others,
    # in proportion to their activity; one or two rounds suffice in practice.
    while True:
        excess = int(np.maximum(counts - n_items, 0).sum())
        if excess == 0:
            return counts
        np.minimum(counts, n_items, out=counts)
        room = np.where(counts < n_items, activity, 0.0)
        counts += rng.multinomial(excess, room / room.sum())


def _add_items(rng, weights, keys):
    """Add to ``keys``, in place, items drawn with probability ~ ``weights``."""
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    # Inverse cdf with a guide table: a binary search per draw is slow on
    # tens of millions of draws; guide[k] is the first item that a draw in
    # [k/m, (k+1)/m) can be, and a few vectorised steps move on from there.
    # The bucket edges are lowered a little so that rounding in u * m never
    # starts a draw past its item.
    m = 4 * weights.shape[0]
    guide = np.searchsorted(cdf, np.arange(m) / m * (1.0 - 1e-9), side="right")
    for start in range(0, keys.shape[0], _CHUNK):
        u = rng.random(min(_CHUNK, keys.shape[0] - start))
        bucket = np.minimum((u * m).astype(np.intp), m - 1)
        items = guide[bucket]
        # cdf[-1] == 1 > u, so no draw steps past the last item.
        todo = np.flatnonzero(cdf[items] <= u)
        while todo.shape[0]:
            items[todo] += 1
            todo = todo[cdf[items[todo]] <= u[todo]]
        keys[start:start + u.shape[0]] += items


def _sorted_unique(keys):
    """Sort ``keys`` in place and return its distinct values."""
    keys.sort()
    if keys.shape[0] < 2:
        return keys
    distinct = np.empty(keys.shape[0], dtype=bool)
    distinct[0] = True
    np.not_equal(keys[1:], keys[:-1], out=distinct[1:])
    return keys[distinct]


def _contains(sorted_keys, queries):
    """Boolean mask: which ``queries`` occur in ``sorted_keys``."""
    if sorted_keys.shape[0] == 0:
        return np.zeros(queries.shape[0], dtype=bool)
    pos = np.searchsorted(sorted_keys, queries)
    np.minimum(pos, sorted_keys.shape[0] - 1, out=pos)
    return sorted_keys[pos] == queries


def _distinct_keys(rng, counts, n_items, popularity):
    """Sorted keys ``user * n_items + item``, ``counts[u]`` distinct items per user."""
    n_users = counts.shape[0]
    keys = np.repeat(np.arange(n_users, dtype=np.int64) * n_items, counts)
    _add_items(rng, popularity, keys)
    keys = _sorted_unique(keys)
    row_starts = np.arange(n_users + 1, dtype=np.int64) * n_items
    deficit = counts - np.diff(np.searchsorted(keys, row_starts))

    # Redraws for the users short of their count; accepted keys collect in
    # `extra` (sorted, small) and are merged into `keys` once at the end.
    extra = np.empty(0, dtype=np.int64)
    for round_ in range(_MAX_ROUNDS):
        short = np.flatnonzero(deficit)
        if short.shape[0] == 0:
            break
        exponent = _ZIPF_EXPONENT * max(0.0, 1.0 - round_ / _TAPER_ROUNDS)
        new = np.repeat(short.astype(np.int64) * n_items, deficit[short])
        _add_items(rng, popularity**exponent, new)
        new = _sorted_unique(new)
        new = new[~(_contains(keys, new) | _contains(extra, new))]
        # A user draws `deficit` items and keeps at most that many.
        deficit -= np.bincount(new // n_items, minlength=n_users)
        extra = np.sort(np.concatenate([extra, new]))

    short = np.flatnonzero(deficit)
    if short.shape[0]:
        extra = np.sort(np.concatenate(
            [extra, _fill_unseen(rng, short, deficit[short], n_items, keys, extra)]
        ))
    return np.insert(keys, np.searchsorted(keys, extra), extra)


def _fill_unseen(rng, users, wanted, n_items, keys, extra):
    """For each user, ``wanted`` distinct items it does not hold yet (uniform)."""
    out = []
    block = max(1, _CHUNK // n_items)
    columns = np.arange(n_items, dtype=np.int64)
    for start in range(0, users.shape[0], block):
        rows = users[start:start + block].astype(np.int64)
        candidates = rows[:, None] * n_items + columns
        held = _contains(keys, candidates.ravel()) | _contains(extra, candidates.ravel())
        # Random priorities over the unseen items; the `wanted` smallest win.
        priority = rng.random(candidates.shape)
        priority[held.reshape(candidates.shape)] = np.inf
        order = np.argsort(priority, axis=1)
        take = columns < wanted[start:start + block, None]
        out.append(np.take_along_axis(candidates, order, axis=1)[take])
    return np.concatenate(out)
