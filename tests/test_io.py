"""fastem.io: every format gives the same ratings, ids keep their type, bad files are refused."""

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp
from numpy.testing import assert_array_equal

import fastem
from fastem import ObservedData, as_observed
from fastem.io import _triples as fio
from fastem.io import (
    RatingData,
    load,
    load_dense_text,
    load_matrix_market,
    load_npz,
    load_triples,
    to_observed,
)

# 3 users x 4 items, NaN = missing; every row and column has a rating, and one
# rating is an explicit 0 (triples can say so, the course's dense files cannot).
RATINGS = np.array([
    [4.0, np.nan, 2.5, np.nan],
    [np.nan, 1.0, np.nan, 0.0],
    [5.0, 3.0, np.nan, 4.0],
])
USER_IDS = np.array([7, 12, 300])
ITEM_IDS = np.array([1, 20, 33, 1000])


def records(matrix=RATINGS, users=USER_IDS, items=ITEM_IDS):
    """(user id, item id, rating) of the observed entries, in a shuffled order."""
    rows, cols = np.nonzero(~np.isnan(matrix))
    order = np.random.default_rng(0).permutation(rows.shape[0])
    return [(users[r], items[c], matrix[r, c]) for r, c in zip(rows[order], cols[order])]


def write_triples(path, recs, delimiter="\t", header=None, timestamps=True, newline="\n"):
    lines = [] if header is None else [header]
    for k, (user, item, rating) in enumerate(recs):
        fields = [str(user), str(item), f"{rating:g}"]
        if timestamps:
            fields.append(str(881250949 + k))
        lines.append(delimiter.join(fields))
    path.write_text(newline.join(lines) + newline, encoding="utf-8")
    return path


def as_dense(data):
    """The matrix of a RatingData with NaN for missing entries."""
    out = np.full(data.shape, np.nan)
    coo = data.matrix.tocoo()
    out[coo.row, coo.col] = coo.data
    return out


def check(data, expected=RATINGS, users=USER_IDS, items=ITEM_IDS, dtype=np.float64):
    assert isinstance(data, RatingData)
    assert sp.isspmatrix_csr(data.matrix)
    assert data.matrix.dtype == dtype
    assert data.matrix.has_canonical_format
    assert_array_equal(data.row_labels, users)
    assert_array_equal(data.col_labels, items)
    assert data.shape == expected.shape
    assert data.nnz == np.count_nonzero(~np.isnan(expected))
    assert_array_equal(as_dense(data), expected.astype(dtype))


# --------------------------------------------------------------------------
# Triples: delimiters, headers, ids


@pytest.mark.parametrize("delimiter", ["\t", ",", "::", ";", " ", "   "])
@pytest.mark.parametrize("timestamps", [True, False])
def test_triples_delimiter_detected(tmp_path, delimiter, timestamps):
    path = write_triples(tmp_path / "r.data", records(), delimiter, timestamps=timestamps)
    check(load_triples(path))
    check(load(path))


@pytest.mark.parametrize("given", [None, ",", "|"])
def test_triples_explicit_delimiter(tmp_path, given):
    delimiter = given or ","
    path = write_triples(tmp_path / "r.csv", records(), delimiter)
    check(load_triples(path, delimiter=given))


def test_triples_whitespace_forced_with_a_space(tmp_path):
    path = tmp_path / "r.txt"
    path.write_text("7\t1  4\n12 \t 20\t1\n")
    data = load_triples(path, delimiter=" ")
    assert_array_equal(as_dense(data), [[4.0, np.nan], [np.nan, 1.0]])


@pytest.mark.parametrize("header", [None, True])
def test_csv_with_header(tmp_path, header):
    path = write_triples(tmp_path / "ratings.csv", records(), ",",
                         header="userId,movieId,rating,timestamp")
    check(load_triples(path, header=header))


@pytest.mark.parametrize("header", [None, False])
def test_csv_without_header(tmp_path, header):
    path = write_triples(tmp_path / "ratings.csv", records(), ",")
    check(load_triples(path, header=header))


def test_header_true_skips_a_numeric_first_line(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("1,2,3\n7,1,4\n")
    data = load_triples(path, header=True)
    assert data.nnz == 1 and data.row_labels.tolist() == [7]


def test_crlf_bom_and_blank_lines(tmp_path):
    path = tmp_path / "ratings.csv"
    body = write_triples(tmp_path / "plain.csv", records(), ",",
                         header="userId,movieId,rating,timestamp").read_text()
    lines = body.splitlines()
    text = "\n\n" + "\r\n".join(lines[:3]) + "\r\n\r\n" + "\r\n".join(lines[3:]) + "\r\n\n"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    check(load_triples(path))


def test_integer_ids_sorted_numerically(tmp_path):
    # As strings '100' < '2'; as ids 2 < 100.
    path = tmp_path / "r.tsv"
    path.write_text("100\t5\t1\n2\t-3\t2\n10\t5\t3\n")
    data = load_triples(path)
    assert data.row_labels.dtype == np.int64 and data.col_labels.dtype == np.int64
    assert_array_equal(data.row_labels, [2, 10, 100])
    assert_array_equal(data.col_labels, [-3, 5])
    assert_array_equal(as_dense(data), [[2.0, np.nan], [np.nan, 3.0], [np.nan, 1.0]])


def test_large_integer_ids_are_exact(tmp_path):
    # Above 2**53 a float64 would merge these two ids.
    big = [2**53 + 1, 2**53 + 2, 2**63 - 1]
    path = tmp_path / "r.tsv"
    path.write_text("".join(f"{u}\t{u - 1}\t{k}\n" for k, u in enumerate(big, 1)))
    data = load_triples(path)
    assert data.row_labels.dtype == np.int64
    assert data.row_labels.tolist() == big
    assert data.col_labels.tolist() == [b - 1 for b in big]
    assert_array_equal(data.matrix.diagonal(), [1.0, 2.0, 3.0])


def test_ids_beyond_int64_stay_strings(tmp_path):
    path = tmp_path / "r.tsv"
    path.write_text(f"{2**64}\t1\t1\n5\t1\t2\n")
    data = load_triples(path)
    assert data.row_labels.tolist() == [str(2**64), "5"]
    assert data.col_labels.dtype == np.int64


def test_string_ids(tmp_path):
    users = np.array(["u17", "u2", "zoé"])
    items = np.array(["i1", "movie 20", "x", "x2"])
    path = write_triples(tmp_path / "r.tsv", records(users=users, items=items))
    data = load_triples(path)
    assert data.row_labels.dtype.kind == "U" and data.col_labels.dtype.kind == "U"
    check(data, users=np.sort(users), items=np.sort(items))  # already in order


def test_user_and_item_ids_typed_independently(tmp_path):
    users = np.array(["a", "b", "c"])
    path = write_triples(tmp_path / "r.csv", records(users=users), ",")
    data = load_triples(path)
    assert data.row_labels.tolist() == ["a", "b", "c"]
    assert data.col_labels.dtype == np.int64
    check(data, users=users)


def test_integer_spellings_of_one_id_merge(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("017,1,1\n17,2,2\n +17 ,3,3\nu,1,4\n")
    data = load_triples(path)
    assert data.row_labels.tolist() == ["+17", "017", "17", "u"]  # strings: not merged
    path.write_text("017,1,1\n17,2,2\n+17,3,3\n")
    data = load_triples(path)
    assert data.row_labels.tolist() == [17] and data.nnz == 3


def test_string_ids_after_the_first_block(tmp_path, monkeypatch):
    # The first lines look numeric; the reader must start again with strings.
    monkeypatch.setattr(fio, "_CHUNK_BYTES", 64)
    lines = [f"{u}\t{u % 7}\t{u % 5}" for u in range(1, 60)] + ["u17\t3\t4.5", "60\t1\t1"]
    path = tmp_path / "r.tsv"
    path.write_text("\n".join(lines) + "\n")
    data = load_triples(path)
    assert data.row_labels[-1] == "u17" and data.row_labels[0] == "1"
    assert data.col_labels.dtype == np.int64
    assert data.matrix[data.row_labels.tolist().index("u17"), 3] == 4.5
    assert data.nnz == 61


def test_long_lines_with_string_ids(tmp_path):
    # Lines longer than the fixed-width limit take numpy's self-sizing path.
    long = "y" * (fio._MAX_FIXED_WIDTH + 50)
    path = tmp_path / "r.tsv"
    path.write_text(f"a\tb\t1\t{long}\nc\t{long}\t2\tz\n")
    data = load_triples(path)
    assert data.row_labels.tolist() == ["a", "c"]
    assert data.col_labels.tolist() == ["b", long]
    assert_array_equal(as_dense(data), [[1.0, np.nan], [np.nan, 2.0]])


def test_columns_in_another_order(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("rating,when,item,user\n" + "".join(
        f"{r:g},0,{i},{u}\n" for u, i, r in records()))
    check(load_triples(path, columns=(3, 2, 0)))


def test_float32(tmp_path):
    path = write_triples(tmp_path / "r.tsv", records())
    data = load_triples(path, dtype=np.float32)
    check(data, dtype=np.float32)
    assert to_observed(data).data.dtype == np.float32


@pytest.mark.parametrize("chunk", [None, 8])
def test_no_final_newline(tmp_path, monkeypatch, chunk):
    if chunk:
        monkeypatch.setattr(fio, "_CHUNK_BYTES", chunk)
    path = tmp_path / "r.csv"
    path.write_text("1,1,5\n2,1,3\n2,2,4")
    data = load(str(path))  # a str path works too
    assert_array_equal(as_dense(data), [[5.0, np.nan], [3.0, 4.0]])


def test_duplicates_are_refused_or_the_last_rating_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(fio, "_CHUNK_BYTES", 32)  # duplicates in different blocks
    path = tmp_path / "r.tsv"
    path.write_text("1\t1\t5\n2\t1\t3\n1\t1\t2\n1\t2\t4\n2\t1\t1\n1\t1\t0\n")
    # Never a silent sum or choice: by default an error naming how many
    # lines repeat a pair and the first pair, in the file's ids.
    with pytest.raises(ValueError, match=r"same \(user, item\) pair twice or more: 3 "
                                         r"repeated entries, the first at \(1, 1\)"):
        load_triples(path)
    with pytest.warns(fastem.DuplicateRatingsWarning, match="3 rating"):
        data = load_triples(path, duplicates="last")
    assert_array_equal(as_dense(data), [[0.0, 4.0], [1.0, np.nan]])
    assert data.nnz == 3
    with pytest.raises(ValueError, match="duplicates='first' is invalid"):
        load_triples(path, duplicates="first")


@pytest.mark.parametrize("kind", ["mtx", "npz"])
def test_matrix_files_with_a_repeated_entry(tmp_path, kind):
    coo = sp.coo_matrix((np.array([4.0, 4.0, 2.0]), (np.array([0, 0, 1]),
                                                    np.array([1, 1, 0]))), shape=(2, 2))
    path = tmp_path / f"r.{kind}"
    if kind == "mtx":
        scipy.io.mmwrite(str(path), coo)
    else:
        sp.save_npz(path, coo)
    with pytest.raises(ValueError, match="1 repeated entry, the first at \\(0, 1\\)"):
        load(path)
    with pytest.warns(fastem.DuplicateRatingsWarning):
        data = load(path, duplicates="last")
    assert_array_equal(data.matrix.toarray(), [[0.0, 4.0], [2.0, 0.0]])


def test_many_blocks_match_a_reference(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    n = 3000
    users = rng.integers(0, 200, n) * 7
    items = rng.integers(0, 50, n)
    ratings = rng.integers(0, 11, n) / 2
    path = tmp_path / "r.tsv"
    path.write_text("".join(f"{u}\t{i}\t{r:g}\t0\n" for u, i, r in zip(users, items, ratings)))
    expected = {}
    for u, i, r in zip(users, items, ratings):
        expected[u, i] = r  # the last one wins
    row_labels, col_labels = np.unique(users), np.unique(items)
    dense = np.full((row_labels.shape[0], col_labels.shape[0]), np.nan)
    for (u, i), r in expected.items():
        dense[np.searchsorted(row_labels, u), np.searchsorted(col_labels, i)] = r
    with pytest.warns(fastem.DuplicateRatingsWarning, match="388 rating"):
        whole = load_triples(path, duplicates="last")
    monkeypatch.setattr(fio, "_CHUNK_BYTES", 1000)
    with pytest.warns(fastem.DuplicateRatingsWarning, match="388 rating"):
        blocks = load_triples(path, duplicates="last")
    for data in (whole, blocks):
        check(data, dense, row_labels, col_labels)


# --------------------------------------------------------------------------
# Malformed triples


@pytest.mark.parametrize("bad_line, message", [
    ("5,1,4", "expected 4 fields as on line 2, found 3"),
    ("5,1,4,0,9", "expected 4 fields as on line 2, found 5"),
    ("5,1,four,0", "rating 'four' is not a number"),
    ("5,1,,0", "rating '' is not a number"),
    ("5,,4,0", "the item id is empty"),
    ("u5,1,4,0", None),  # not an error: ids become strings
    ("5,1,nan,0", "rating 'nan' is not finite"),
    ("5,1,inf,0", "rating 'inf' is not finite"),
])
@pytest.mark.parametrize("chunk", [None, 40])
def test_malformed_line_names_file_and_line(tmp_path, monkeypatch, bad_line, message, chunk):
    if chunk:
        monkeypatch.setattr(fio, "_CHUNK_BYTES", chunk)
    good = [f"{u},{u % 3},{u % 5},1" for u in range(1, 30)]
    # The header is line 1 and a blank line is line 12, so the bad line is line 22.
    lines = ["user,item,rating,ts"] + good[:10] + [""] + good[10:19] + [bad_line] + good[19:]
    path = tmp_path / "my ratings.csv"
    path.write_text("\n".join(lines) + "\n")
    if message is None:
        assert load_triples(path).row_labels[-1] == "u5"
        return
    with pytest.raises(ValueError) as info:
        load_triples(path)
    text = str(info.value)
    assert str(path) in text and "line 22:" in text and message in text
    assert repr(bad_line) in text


@pytest.mark.parametrize("bad_line, message", [
    ("u1 i1", "expected 3 fields as on line 1, found 2"),
    ("u1 i1 2 3", "expected 3 fields as on line 1, found 4"),
    ("u1 i1 x", "rating 'x' is not a number"),
])
def test_malformed_line_with_string_ids(tmp_path, bad_line, message):
    path = tmp_path / "r.txt"
    path.write_text(f"u0 i0 1\nu2  i2 2\n{bad_line}\n")
    with pytest.raises(ValueError, match=rf"r\.txt, line 3: {message}"):
        load_triples(path)


def test_float32_overflow_is_not_finite(tmp_path):
    path = tmp_path / "r.tsv"
    path.write_text("1\t1\t1e39\n")
    assert load_triples(path).matrix[0, 0] == 1e39
    with pytest.raises(ValueError, match="line 1: rating '1e39' is not finite in float32"):
        load_triples(path, dtype=np.float32)


def test_first_line_too_short_for_columns(tmp_path):
    path = tmp_path / "r.tsv"
    path.write_text("1\t2\n")
    with pytest.raises(ValueError, match=r"line 1: 2 fields, but columns=\(0, 1, 2\)"):
        load_triples(path)


@pytest.mark.parametrize("kwargs, error", [
    ({"columns": (0, 1)}, ValueError),
    ({"columns": (0, 0, 2)}, ValueError),
    ({"columns": (0, 1, -1)}, ValueError),
    ({"dtype": np.int64}, TypeError),
    ({"header": "yes"}, TypeError),
    ({"delimiter": ""}, ValueError),
    ({"delimiter": "\n"}, ValueError),
])
def test_bad_arguments(tmp_path, kwargs, error):
    path = write_triples(tmp_path / "r.tsv", records())
    with pytest.raises(error):
        load_triples(path, **kwargs)


# --------------------------------------------------------------------------
# Empty and missing files


@pytest.mark.parametrize("loader, name", [
    (load_triples, "r.csv"), (load_dense_text, "r.txt"), (load_matrix_market, "r.mtx"),
    (load_npz, "r.npz"), (load, "r.csv"), (load, "r.txt"), (load, "r.npz"),
])
@pytest.mark.parametrize("content", ["", "\n \n"])
def test_empty_file(tmp_path, loader, name, content):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ValueError, match=r"r\.\w+"):
        loader(path)


def test_header_only(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("userId,movieId,rating,timestamp\n\n")
    with pytest.raises(ValueError, match="no ratings"):
        load_triples(path)


@pytest.mark.parametrize("loader", [load, load_triples, load_dense_text,
                                    load_matrix_market, load_npz])
def test_missing_file(tmp_path, loader):
    path = tmp_path / "absent.csv"
    with pytest.raises(FileNotFoundError, match="absent.csv"):
        loader(path)


# --------------------------------------------------------------------------
# Dense text


def test_dense_text(tmp_path):
    path = tmp_path / "m.txt"
    path.write_text("2 0 3 0 1\n\n0 5 0 0 4\n")
    data = load_dense_text(path)
    expected = np.array([[2, np.nan, 3, np.nan, 1], [np.nan, 5, np.nan, np.nan, 4]])
    check(data, expected, np.arange(2), np.arange(5))
    assert data.row_labels.dtype == np.int64
    check(load_dense_text(path, dtype=np.float32), expected, np.arange(2), np.arange(5),
          dtype=np.float32)
    all_observed = load_dense_text(path, missing_value=None)
    assert all_observed.nnz == 10 and all_observed.matrix[0, 1] == 0.0


def test_dense_text_nan_missing_keeps_zeros(tmp_path):
    path = tmp_path / "m.txt"
    path.write_text("0 nan\nnan 2.5\n")
    data = load_dense_text(path, missing_value=np.nan)
    check(data, np.array([[0.0, np.nan], [np.nan, 2.5]]), np.arange(2), np.arange(2))


@pytest.mark.parametrize("text, message", [
    ("1 2 3\n\n4 5\n", "line 3: expected 3 fields as on the first line, found 2"),
    ("1 2 3\n4 5 6 7\n", "line 2: expected 3 fields as on the first line, found 4"),
    ("1 2 3\n4 x 6\n", "line 2: field 2 'x' is not a number"),
    ("1 2 3\n\n4 inf 6\n", "line 3: field 2 is inf, not a finite rating"),
])
def test_dense_text_malformed(tmp_path, text, message):
    path = tmp_path / "m.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=rf"m\.txt, {message}"):
        load_dense_text(path)


def test_course_file(course_data_dir, load_course_file):
    # The fixture skips when the file is absent (fails under CI=true).
    reference = as_observed(load_course_file("netflix_incomplete.txt"), missing_values=0)
    path = course_data_dir / "netflix_incomplete.txt"
    data = load_dense_text(path)
    assert data.shape == (1200, 1200)
    assert data.nnz == 1200 * 1200 - 328_232 == 1_111_768
    assert_array_equal(data.row_labels, np.arange(1200))
    observed = to_observed(data)
    assert_array_equal(observed.data, reference.data)
    assert_array_equal(observed.indices, reference.indices)
    assert_array_equal(observed.indptr, reference.indptr)
    assert load(path).nnz == data.nnz  # .txt with 1200 fields a line: dense


# --------------------------------------------------------------------------
# Matrix Market and npz


def test_matrix_market_round_trip(tmp_path):
    matrix = sp.coo_matrix(([4.0, 0.0, -1.5], ([0, 1, 2], [3, 0, 3])), shape=(4, 5))
    path = tmp_path / "m.mtx"
    scipy.io.mmwrite(path, matrix)
    for data in (load_matrix_market(path), load(path)):
        assert data.shape == (4, 5) and data.nnz == 3  # the explicit 0 is observed
        assert_array_equal(data.matrix.toarray(), matrix.toarray())
        assert_array_equal(data.row_labels, np.arange(4))
        assert_array_equal(data.col_labels, np.arange(5))
    assert load_matrix_market(path, dtype=np.float32).matrix.dtype == np.float32


def test_matrix_market_array_format_is_all_observed(tmp_path):
    path = tmp_path / "m.mtx"
    scipy.io.mmwrite(path, np.array([[1.0, 0.0], [0.0, 2.0]]))
    data = load_matrix_market(path)
    assert data.nnz == 4 and data.matrix[0, 1] == 0.0


def test_matrix_market_malformed(tmp_path):
    path = tmp_path / "m.mtx"
    path.write_text("not a matrix market file\n")
    with pytest.raises(ValueError, match=r"m\.mtx"):
        load_matrix_market(path)


@pytest.mark.parametrize("kind", ["csr", "csc", "coo"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_npz_round_trip(tmp_path, kind, dtype):
    matrix = sp.random(6, 4, density=0.4, format=kind, random_state=0, dtype=np.float64)
    matrix.data[0] = 0.0  # an explicit zero: an observed rating
    matrix = matrix.astype(dtype)
    path = tmp_path / "m.npz"
    sp.save_npz(path, matrix)
    for data in (load_npz(path), load(path)):
        assert data.nnz == matrix.nnz
        assert data.matrix.dtype == np.float64
        assert_array_equal(data.matrix.toarray(), matrix.toarray())
        assert data.matrix.has_canonical_format
    assert load_npz(path, dtype=np.float32).matrix.dtype == np.float32


def test_npz_not_a_matrix(tmp_path):
    path = tmp_path / "m.npz"
    np.savez(path, a=np.arange(3))
    with pytest.raises(ValueError, match=r"m\.npz"):
        load_npz(path)


# --------------------------------------------------------------------------
# One matrix in every format


def test_same_data_in_every_format(tmp_path):
    # Ids 0..n-1 so that the formats without ids agree; no zero ratings, since
    # the dense files mark missing ratings with 0; 5 columns, so that the
    # dense .txt file is recognised as dense.
    matrix = np.column_stack([RATINGS, [np.nan, 2.0, 1.5]])
    matrix[matrix == 0] = 3.5
    users, items = np.arange(3), np.arange(5)
    recs = records(matrix, users, items)
    paths = [
        write_triples(tmp_path / "u.data", recs, "\t"),
        write_triples(tmp_path / "ratings.csv", recs, ",",
                      header="userId,movieId,rating,timestamp"),
        write_triples(tmp_path / "ratings.dat", recs, "::"),
        write_triples(tmp_path / "triples.txt", recs, " ", timestamps=False),
        write_triples(tmp_path / "ratings.tsv", recs, "\t", timestamps=False),
    ]
    dense = tmp_path / "dense.txt"
    np.savetxt(dense, np.nan_to_num(matrix, nan=0.0), fmt="%g")
    paths.append(dense)
    observed = sp.csr_matrix(np.nan_to_num(matrix, nan=0.0))
    paths.append(tmp_path / "m.mtx")
    scipy.io.mmwrite(paths[-1], observed)
    paths.append(tmp_path / "m.npz")
    sp.save_npz(paths[-1], observed)
    for path in paths:
        check(load(path), matrix, users, items)


# --------------------------------------------------------------------------
# load() dispatch and RatingData


def test_txt_sniffing(tmp_path):
    # More than 4 fields on the first line: dense; otherwise triples.
    dense = tmp_path / "d.txt"
    dense.write_text("1 0 2 0 3\n0 4 0 5 0\n")
    assert load(dense).shape == (2, 5)
    four = tmp_path / "t.txt"
    four.write_text("1 0 2 0\n0 4 0 5\n")
    assert load(four).shape == (2, 2)  # read as triples: users 0 and 1, items 0 and 4
    assert load(four, format="dense").shape == (2, 4)


@pytest.mark.parametrize("name", ["r.csv", "r.tsv", "r.dat", "r.data", "R.CSV"])
def test_triple_extensions(tmp_path, name):
    path = write_triples(tmp_path / name, records(), "\t")
    check(load(path))


def test_explicit_format_overrides_the_extension(tmp_path):
    path = write_triples(tmp_path / "ratings.bin", records(), ",")
    check(load(path, format="triples", delimiter=","))


def test_unknown_format(tmp_path):
    path = write_triples(tmp_path / "ratings.csv", records())
    with pytest.raises(ValueError, match="'dense', 'triples', 'mtx', 'npz'"):
        load(path, format="parquet")
    odd = write_triples(tmp_path / "ratings.xyz", records())
    with pytest.raises(ValueError, match=r"ratings\.xyz.*format="):
        load(odd)


def test_to_observed_keeps_explicit_zeros(tmp_path):
    data = load_triples(write_triples(tmp_path / "r.tsv", records()))
    for observed in (to_observed(data), data.to_observed(), data.to_observed(np.float32)):
        assert isinstance(observed, ObservedData)
        assert observed.shape == (3, 4) and observed.nnz == 7
        assert 0.0 in observed.data
    assert data.to_observed(np.float32).data.dtype == np.float32


def test_rating_data_checks_labels():
    matrix = sp.csr_matrix(np.ones((2, 3)))
    with pytest.raises(ValueError, match="do not match"):
        RatingData(matrix, np.arange(3), np.arange(3))
    with pytest.raises(Exception):
        RatingData(matrix, np.arange(2), np.arange(3)).matrix = None  # frozen
