"""The ``fastem`` command, end to end through subprocesses, and its helpers.

Every command runs as ``python -m fastem`` in a temporary folder, on the
installed package (the environment is passed on unchanged).
"""

import importlib.util
import io
import math
import re
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose

import fastem
import fastem.io as rating_io
from fastem import as_observed
from fastem.cli import CommandError, main
from fastem.cli._evaluate import baseline_predictions, evaluate_holdout, split_ratings
from fastem.cli._output import atomic_output as _atomic_output
from fastem.cli._progress import FitProgress, RecommenderProgress
from fastem.datasets import make_ratings

HAVE_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
COMMANDS = ["fit", "predict", "recommend", "evaluate", "select", "demo", "bench"]


def fastem_cli(*args, cwd):
    """Run ``python -m fastem ARGS`` in ``cwd``; the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "fastem", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


class InProcess:
    """What ``main`` returned and printed: the same fields as a CompletedProcess."""

    def __init__(self, capsys, *args):
        self.returncode = main([str(arg) for arg in args])
        self.stdout, self.stderr = capsys.readouterr()


def assert_one_line_error(result, *fragments):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("fastem: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def table_rows(stdout, first_header):
    """The rows under the header line that starts with ``first_header``.

    Cells are separated by two spaces or more.
    """
    lines = stdout.splitlines()
    start = next(k for k, line in enumerate(lines)
                 if line.strip().startswith(first_header))
    rows = []
    for line in lines[start + 1:]:
        if not line.strip():
            break
        rows.append(re.split(r"\s{2,}", line.strip()))
    return rows


@pytest.fixture(scope="module")
def ratings_file(tmp_path_factory):
    """A comma-separated ratings file with string ids, header line, 400 x 60."""
    folder = tmp_path_factory.mktemp("ratings")
    data = make_ratings(400, 60, 8_000, n_groups=4, random_state=3)
    coo = data.to_csr().tocoo()
    path = folder / "ratings.csv"
    with open(path, "w") as f:
        f.write("user,item,rating\n")
        # Shuffled, so that ids are not met in order.
        for p in np.random.default_rng(0).permutation(coo.nnz):
            f.write(f"u{coo.row[p]},film-{coo.col[p]},{coo.data[p]:g}\n")
    return path


@pytest.fixture(scope="module")
def fitted(ratings_file, tmp_path_factory):
    """``fastem fit ratings.csv --model mixture -k 4 -o model.npz`` run once:
    (folder, result)."""
    folder = tmp_path_factory.mktemp("fit")
    result = fastem_cli("fit", ratings_file, "--model", "mixture", "-k", 4, "-o",
                        "model.npz", "--seed", 2, cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder, result


@pytest.fixture(scope="module")
def fitted_recommender(ratings_file, tmp_path_factory):
    """``fastem fit ratings.csv -o recommender.npz --seed 2`` run once:
    (folder, result)."""
    folder = tmp_path_factory.mktemp("recommender")
    result = fastem_cli("fit", ratings_file, "-o", "recommender.npz", "--seed", 2,
                        cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder, result


@pytest.fixture(scope="module")
def newer_ratings(ratings_file, fitted_recommender):
    """ratings.csv and the ratings of a new user, 'newbie': (path, newbie's ratings)."""
    folder, _ = fitted_recommender
    newbie = {"film-0": 5.0, "film-1": 1.0, "film-2": 4.0, "film-3": 2.0,
              "no-such-film": 3.0}
    path = folder / "newer.csv"
    lines = "".join(f"newbie,{item},{value:g}\n" for item, value in newbie.items())
    path.write_text(ratings_file.read_text() + lines)
    return path, newbie


# ---------------------------------------------------------------------------
# help and usage
# ---------------------------------------------------------------------------

def test_console_help_lists_every_command(tmp_path):
    result = fastem_cli("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in COMMANDS:
        assert f"    {command} " in result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: fastem {command}")


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "usage: fastem" in capsys.readouterr().out


def test_bad_option_value_is_one_line_usage_error(tmp_path, ratings_file):
    result = fastem_cli("fit", ratings_file, "-k", "zero", cwd=tmp_path)
    assert result.returncode == 2
    assert_one_line_error(result, "-k", "'zero' is not an integer", "fastem fit --help")


# ---------------------------------------------------------------------------
# fit
# ---------------------------------------------------------------------------

def test_fit_summary_and_model_with_ids(fitted, ratings_file):
    folder, result = fitted
    out = result.stdout
    assert "400 users x 60 items, 8,000 ratings" in out
    assert "fitted K = 4 (spherical, 1 restart, seed 2)" in out
    for word in ("iterations", "log-likelihood", "BIC", " s\n"):
        assert word in out
    # Not a terminal: plain progress lines on stderr.
    assert "EM: " in result.stderr and "iterations, log-likelihood" in result.stderr

    model = fastem.load(folder / "model.npz")
    loaded = rating_io.load(ratings_file)
    assert model.row_labels_.tolist() == loaded.row_labels.tolist()
    assert model.column_labels_.tolist() == loaded.col_labels.tolist()
    assert model.column_labels_[0] == "film-0"
    # The same fit in the library gives the same parameters.
    same = fastem.GaussianMixture(4, random_state=2).fit(loaded.matrix)
    assert_allclose(model.means_, same.means_, rtol=1e-10)
    assert_allclose(model.weights_, same.weights_, rtol=1e-10)
    assert f"BIC             {same.bic(loaded.matrix):.10g}" in out
    assert not [p for p in folder.iterdir() if p.name.endswith(".part")]


def test_fit_default_output_name_quiet_and_options(tmp_path, ratings_file):
    result = fastem_cli("fit", ratings_file, "--model", "mixture", "-k", 2, "--quiet",
                        "--covariance", "diag", "--n-init", 2, "--threads", 1, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "(diag, 2 restarts, seed 0)" in result.stdout
    model = fastem.load(tmp_path / "ratings.k2.npz")
    assert model.variances_.shape == (2, 60)
    assert model.n_init == 2


def test_fit_dense_course_format(tmp_path):
    X = np.array([[5, 0, 1, 4], [4, 5, 0, 1], [0, 1, 5, 5], [1, 0, 4, 5], [5, 4, 1, 0]])
    np.savetxt(tmp_path / "small.txt", X, fmt="%d")
    result = fastem_cli("fit", "small.txt", "--model", "mixture", "-k", 2, "--format",
                        "dense", "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "5 users x 4 items, 15 ratings" in result.stdout
    model = fastem.load(tmp_path / "small.k2.npz")
    assert model.column_labels_.tolist() == [0, 1, 2, 3]


def test_fit_recommender_by_default(fitted_recommender, ratings_file):
    folder, result = fitted_recommender
    out = result.stdout
    assert ("fitted the recommender (offsets and mixtures of the users and of the items, "
            "K = 8, 10 restarts each, seed 2)") in out
    assert "400 users x 60 items, 8,000 ratings 1..5" in out
    assert "mean squared residual" in out
    assert "model written to recommender.npz, with the ids of the 400 users and 60 items" \
        in out
    # Not a terminal: one progress line per part of the fit.
    lines = result.stderr.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "recommender, offsets", "recommender, users' mixtures",
        "recommender, items' mixtures"]
    assert "10 restarts" in lines[1] and "10 restarts" in lines[2]

    model = fastem.load(folder / "recommender.npz")
    assert isinstance(model, fastem.Recommender)
    assert (model.n_components, model.n_restarts, model.sides) == (8, 10, "both")
    loaded = rating_io.load(ratings_file)
    assert model.user_ids_.tolist() == loaded.row_labels.tolist()
    assert model.item_ids_.tolist() == loaded.col_labels.tolist()
    assert f"mean squared residual  {model.residual_variance_:.4f}" in out
    # The same fit in the library gives the same predictions.
    same = fastem.Recommender(random_state=2).fit(
        loaded.matrix, user_ids=loaded.row_labels, item_ids=loaded.col_labels)
    users, items = ["u3", "u12", "u399"], ["film-0", "film-7", "film-59"]
    assert_allclose(model.predict(users, items), same.predict(users, items), rtol=1e-6)


def test_fit_recommender_options_and_default_name(tmp_path, ratings_file):
    result = fastem_cli("fit", ratings_file, "-k", 3, "--restarts", 2, "--sides", "users",
                        "--threads", 1, "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert ("(offsets and a mixture of the users, K = 3, 2 restarts, seed 0)"
            in result.stdout)
    model = fastem.load(tmp_path / "ratings.recommender.npz")
    assert (model.n_components, model.n_restarts, model.sides) == (3, 2, "users")
    assert model.items_ is None and model.users_.weights.shape == (2, 3)


@pytest.mark.parametrize("options, fragment", [
    (["--n-init", 2], "argument --n-init: applies to --model mixture only"),
    (["--covariance", "diag"], "argument --covariance: applies to --model mixture only"),
    (["--tol", "1e-3"], "argument --tol: applies to --model mixture only"),
    (["--model", "mixture"], "--model mixture needs the number of components"),
    (["--model", "mixture", "-k", 2, "--restarts", 3],
     "argument --restarts: applies to --model recommender only"),
    (["--model", "mixture", "-k", 2, "--sides", "items"], "argument --sides"),
    (["--model", "tree"], "argument --model: invalid choice"),
    (["--restarts", 0], "n_restarts=0 is invalid"),
])
def test_fit_refuses_the_settings_of_the_other_model(tmp_path, ratings_file, capsys,
                                                     options, fragment):
    result = InProcess(capsys, "fit", ratings_file, *options, "-o", tmp_path / "m.npz")
    assert result.returncode == 2
    assert_one_line_error(result, fragment, "fastem fit --help")
    assert not (tmp_path / "m.npz").exists()


# ---------------------------------------------------------------------------
# predict
# ---------------------------------------------------------------------------

def test_predict_round_trip_in_raw_ids(fitted, ratings_file):
    folder, _ = fitted
    loaded = rating_io.load(ratings_file)
    model = fastem.load(folder / "model.npz")
    row = {label: k for k, label in enumerate(loaded.row_labels.tolist())}
    col = {label: k for k, label in enumerate(loaded.col_labels.tolist())}
    rated = loaded.matrix[row["u7"]].indices[0]  # a pair rated in the ratings file
    pairs = [("u12", "film-3"), ("u007", "film-5"), ("u7", f"film-{rated}"),
             ("stranger", "film-3"), ("u12", "no-such-film"), ("u12", "film-3")]
    (folder / "pairs.tsv").write_text(
        "user\titem\n" + "".join(f"{u}\t{i}\n" for u, i in pairs))
    result = fastem_cli("predict", "model.npz", "pairs.tsv", "--ratings", ratings_file,
                        "-o", "predictions.tsv", cwd=folder)
    assert result.returncode == 0, result.stderr
    assert "predicted 6 pairs of 4 users" in result.stdout
    assert "2 without ratings" in result.stdout  # 'stranger' and 'u007'
    assert ("fastem: warning: the model does not know 1 item of pairs.tsv (first: "
            "'no-such-film'), in 1 pair: predicted_rating nan") in result.stderr

    lines = (folder / "predictions.tsv").read_text().splitlines()
    assert lines[0] == "user\titem\tpredicted_rating"
    rows = [line.split("\t") for line in lines[1:]]
    assert [(u, i) for u, i, _ in rows] == pairs  # file order, raw ids
    got = np.array([float(v) for _, _, v in rows])

    expected = model.predict_entries(loaded.matrix, [row["u12"], row["u7"]],
                                     [col["film-3"], rated])
    assert_allclose(got[[0, 2, 5]], expected[[0, 1, 0]], rtol=1e-5)
    assert got[2] == loaded.matrix[row["u7"], rated]  # a rated pair keeps its rating
    # Users without ratings: the posterior is the weights.
    assert_allclose(got[1], model.weights_ @ model.means_[:, col["film-5"]], rtol=1e-5)
    assert_allclose(got[3], model.weights_ @ model.means_[:, col["film-3"]], rtol=1e-5)
    assert math.isnan(got[4])


def test_predict_pairs_without_header_to_stdout(fitted, ratings_file):
    folder, _ = fitted
    (folder / "two.csv").write_text("u1,film-2,\nu2,film-4,\n")  # empty rating column
    result = fastem_cli("predict", "model.npz", "two.csv", "--ratings", ratings_file,
                        "-o", "-", cwd=folder)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split("\t")[:2] for line in lines] == [
        ["user", "item"], ["u1", "film-2"], ["u2", "film-4"]]
    assert "predicted 2 pairs of 2 users" in result.stderr  # the report leaves stdout


def test_predict_needs_the_ratings(fitted, capsys, monkeypatch):
    folder, _ = fitted
    monkeypatch.chdir(folder)
    (folder / "one.tsv").write_text("u1\tfilm-2\n")
    result = InProcess(capsys, "predict", "model.npz", "one.tsv", "-o", "out.tsv")
    assert_one_line_error(result, "--ratings")
    assert not (folder / "out.tsv").exists()


def test_predict_fill_writes_the_completed_matrix(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.integers(1, 6, size=(30, 8)).astype(float)
    X[rng.random(X.shape) < 0.3] = 0
    np.savetxt(tmp_path / "incomplete.txt", X, fmt="%d")
    assert fastem_cli("fit", "incomplete.txt", "--model", "mixture", "-k", 3, "--format",
                      "dense", "-q", cwd=tmp_path).returncode == 0
    result = fastem_cli("predict", "incomplete.k3.npz", "incomplete.txt", "--fill",
                        "--format", "dense", "-o", "filled.txt", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "completed the 30 x 8 matrix" in result.stdout
    model = fastem.load(tmp_path / "incomplete.k3.npz")
    filled = np.loadtxt(tmp_path / "filled.txt")
    assert_allclose(filled, model.fill(np.where(X == 0, np.nan, X)), rtol=1e-5)
    assert (filled[X > 0] == X[X > 0]).all()


def test_predict_with_a_recommender_folds_in_new_users(fitted_recommender, newer_ratings):
    folder, _ = fitted_recommender
    newer, newbie = newer_ratings
    pairs = [("u12", "film-3"), ("newbie", "film-5"), ("stranger", "film-3"),
             ("u12", "no-such-film"), ("newbie", "film-0"), ("u12", "film-3")]
    (folder / "pairs.tsv").write_text(
        "user\titem\n" + "".join(f"{u}\t{i}\n" for u, i in pairs))
    result = fastem_cli("predict", "recommender.npz", "pairs.tsv", "--ratings", newer,
                        "-o", "predictions.tsv", cwd=folder)
    assert result.returncode == 0, result.stderr
    assert "predicted 6 pairs of 3 users -> predictions.tsv" in result.stdout
    assert ("2 users of pairs.tsv not in the model: 1 folded in from their ratings in "
            f"{newer}, 1 without ratings there (predicted from the item offsets and the "
            "mixture weights)") in result.stdout
    warnings = result.stderr.splitlines()
    assert warnings == [
        "fastem: warning: the model does not know 1 item of pairs.tsv (first: "
        "'no-such-film'), in 1 pair: predicted from the mean rating and the user's "
        "offset alone",
        f"fastem: warning: 1 rating in {newer} of items the model does not know were "
        "left out of the fold-in"]

    lines = (folder / "predictions.tsv").read_text().splitlines()
    assert lines[0] == "user\titem\tpredicted_rating"
    rows = [line.split("\t") for line in lines[1:]]
    assert [(u, i) for u, i, _ in rows] == pairs
    got = np.array([float(v) for _, _, v in rows])
    assert np.isfinite(got).all()

    model = fastem.load(folder / "recommender.npz")
    model.fold_in(["newbie"] * len(newbie), list(newbie), list(newbie.values()))
    expected = model.predict([u for u, _ in pairs], [i for _, i in pairs])
    assert_allclose(got, expected, rtol=1e-5)
    # An unknown item: the mean and the user's offset; an unknown user: no offset.
    u12 = model.user_ids_.tolist().index("u12")
    assert got[3] == pytest.approx(model.global_mean_ + model.user_bias_[u12], rel=1e-5)
    assert got[2] == pytest.approx(model.predict(["nobody"], ["film-3"])[0], rel=1e-5)


def test_predict_with_a_recommender_and_integer_ids(tmp_path):
    coo = make_ratings(60, 12, 400, n_groups=2, random_state=1).to_csr().tocoo()
    np.savetxt(tmp_path / "ints.tsv", np.c_[coo.row + 100, coo.col + 7, coo.data],
               fmt="%d", delimiter="\t")
    assert fastem_cli("fit", "ints.tsv", "--restarts", 2, "-q",
                      cwd=tmp_path).returncode == 0
    (tmp_path / "pairs.csv").write_text("0100,0007\n100,7\n+101,8\n")
    result = fastem_cli("predict", "ints.recommender.npz", "pairs.csv", "--ratings",
                        "ints.tsv", "-o", "-", "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # every id is known, read as a number
    values = [float(line.split("\t")[2]) for line in result.stdout.splitlines()[1:]]
    model = fastem.load(tmp_path / "ints.recommender.npz")
    assert_allclose(values, model.predict([100, 100, 101], [7, 7, 8]), rtol=1e-5)


def test_predict_fill_refuses_a_recommender(fitted_recommender, ratings_file, capsys,
                                            monkeypatch):
    folder, _ = fitted_recommender
    monkeypatch.chdir(folder)
    result = InProcess(capsys, "predict", "recommender.npz", ratings_file, "--fill",
                       "-o", "filled.txt")
    assert result.returncode == 1
    assert_one_line_error(result, "holds a recommender", "--fill", "--model mixture")
    assert not (folder / "filled.txt").exists()


# ---------------------------------------------------------------------------
# recommend
# ---------------------------------------------------------------------------

def _read_recommendations(text):
    lines = text.splitlines()
    assert lines[0] == "user\trank\titem\tpredicted_rating"
    by_user = {}
    for line in lines[1:]:
        user, rank, item, score = line.split("\t")
        by_user.setdefault(user, []).append((int(rank), item, float(score)))
    return by_user


def test_recommend_listed_users(fitted_recommender, newer_ratings, ratings_file):
    folder, _ = fitted_recommender
    newer, newbie = newer_ratings
    (folder / "users.txt").write_text("user\nu12\n\nnewbie\nnobody\nu12\n")
    result = fastem_cli("recommend", "recommender.npz", "--ratings", newer, "-n", 5,
                        "--users", "users.txt", "-o", "recs.tsv", cwd=folder)
    assert result.returncode == 0, result.stderr
    assert (f"recommended 15 items to 3 users (up to 5 each, 1 of them folded in from "
            f"their ratings in {newer}) -> recs.tsv") in result.stdout
    assert result.stderr.splitlines() == [
        "fastem: warning: 1 user without ratings the model can use (not in the model, "
        f"and no rating in {newer} of an item it knows; first: 'nobody'): recommended "
        "the items of the mean user",
        f"fastem: warning: 1 rating in {newer} of items the model does not know were "
        "left out of the fold-in"]
    got = _read_recommendations((folder / "recs.tsv").read_text())
    assert list(got) == ["u12", "newbie", "nobody"]  # file order, the header skipped
    loaded = rating_io.load(ratings_file)
    rated = {"u12": set(loaded.col_labels[loaded.matrix[
        loaded.row_labels.tolist().index("u12")].indices].tolist()),
        "newbie": set(newbie), "nobody": set()}
    model = fastem.load(folder / "recommender.npz")
    model.fold_in(["newbie"] * len(newbie), list(newbie), list(newbie.values()))
    for user, recommended in got.items():
        assert [rank for rank, _, _ in recommended] == [1, 2, 3, 4, 5]
        items = [item for _, item, _ in recommended]
        scores = [score for _, _, score in recommended]
        assert not set(items) & rated[user]
        assert scores == sorted(scores, reverse=True)
        assert_allclose(scores, model.predict([user] * 5, items), rtol=1e-5)
        # No item left out scores higher than the fifth.
        others = [item for item in model.item_ids_.tolist()
                  if item not in rated[user] and item not in items]
        assert model.predict([user] * len(others), others).max() <= scores[-1] + 1e-9


def test_recommend_every_user_to_stdout(fitted_recommender, ratings_file):
    folder, _ = fitted_recommender
    result = fastem_cli("recommend", "recommender.npz", "--ratings", ratings_file, "-n", 2,
                        "-o", "-", cwd=folder)
    assert result.returncode == 0, result.stderr
    got = _read_recommendations(result.stdout)
    # Two lines per user, fewer for the users who rated all but one item or every one.
    loaded = rating_io.load(ratings_file)
    left = {user: 60 - n for user, n in zip(loaded.row_labels.tolist(),
                                            np.diff(loaded.matrix.indptr))}
    assert {user: len(items) for user, items in got.items()} == {
        user: min(2, n) for user, n in left.items() if n}
    assert min(left.values()) == 0 and 1 in left.values()
    n_lines = sum(min(2, n) for n in left.values())
    # The report leaves stdout.
    assert (f"recommended {n_lines:,} items to 400 users (up to 2 each) -> -"
            in result.stderr)


def test_recommend_fewer_items_than_asked(tmp_path):
    # Three items; user 'a' rated two of them: one line, the third item.
    (tmp_path / "r.csv").write_text("a,x,5\na,y,1\nb,x,4\nb,z,2\nc,y,3\n")
    assert fastem_cli("fit", "r.csv", "-k", 1, "--restarts", 1, "-q",
                      cwd=tmp_path).returncode == 0
    result = fastem_cli("recommend", "r.recommender.npz", "--ratings", "r.csv", "-o", "-",
                        "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    got = _read_recommendations(result.stdout)
    assert [item for _, item, _ in got["a"]] == ["z"]
    assert [item for _, item, _ in got["b"]] == ["y"]
    assert sorted(item for _, item, _ in got["c"]) == ["x", "z"]


def test_recommend_errors(fitted, fitted_recommender, ratings_file, capsys, monkeypatch):
    folder, _ = fitted
    monkeypatch.chdir(folder)
    result = InProcess(capsys, "recommend", "model.npz", "--ratings", ratings_file, "-o",
                       "recs.tsv")
    assert result.returncode == 1
    assert_one_line_error(result, "model.npz holds a Gaussian mixture",
                          "recommender model")
    result = InProcess(capsys, "recommend", "model.npz", "-o", "recs.tsv")
    assert_one_line_error(result, "--ratings")
    result = InProcess(capsys, "recommend", "model.npz", "--ratings", ratings_file,
                       "-n", 0, "-o", "recs.tsv")
    assert result.returncode == 2
    assert_one_line_error(result, "-n", "n=0 is invalid")
    assert not (folder / "recs.tsv").exists()

    folder, _ = fitted_recommender
    monkeypatch.chdir(folder)
    (folder / "taken.tsv").write_text("keep me\n")
    result = InProcess(capsys, "recommend", "recommender.npz", "--ratings", ratings_file,
                       "-o", "taken.tsv")
    assert_one_line_error(result, "taken.tsv exists", "--force")
    assert (folder / "taken.tsv").read_text() == "keep me\n"
    (folder / "empty.txt").write_text("\n\n")
    result = InProcess(capsys, "recommend", "recommender.npz", "--ratings", ratings_file,
                       "--users", "empty.txt", "-o", "taken.tsv", "--force")
    assert_one_line_error(result, "empty.txt", "lists no user")
    assert (folder / "taken.tsv").read_text() == "keep me\n"
    result = InProcess(capsys, "recommend", "recommender.npz", "--ratings", ratings_file,
                       "--users", "absent.txt", "-o", "taken.tsv", "--force")
    assert_one_line_error(result, "absent.txt", "no such file")


# ---------------------------------------------------------------------------
# evaluate, select, demo, bench
# ---------------------------------------------------------------------------

def test_evaluate_table_matches_the_library(tmp_path, ratings_file):
    result = fastem_cli("evaluate", ratings_file, "-k", 4, "--test-fraction", 0.2,
                        "--seed", 1, "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = table_rows(result.stdout, "predictor of the held-out ratings")
    names = [row[0] for row in rows]
    assert names == ["global mean", "item mean", "user + item biases",
                     "Gaussian mixture (K = 4)", "recommender (K = 8)"]
    assert all(len(row) == 3 for row in rows)  # no rank column

    data = rating_io.load(ratings_file).to_observed()
    evaluation = evaluate_holdout(data, fastem.GaussianMixture(4, random_state=1), 0.2, 1,
                                  recommender=fastem.Recommender(random_state=1))
    for row, (name, rmse, mae) in zip(rows, evaluation.scores, strict=True):
        assert (row[0], row[1], row[2]) == (name, f"{rmse:.4f}", f"{mae:.4f}")
    assert float(rows[3][1]) < float(rows[1][1])  # planted groups: the mixture wins
    assert float(rows[4][1]) < float(rows[2][1])  # the recommender beats the biases
    assert f"{evaluation.train.nnz:,} to fit" in result.stdout
    assert (f"held-out log-likelihood under the mixture: "
            f"{evaluation.heldout_log_likelihood:.4f} per rating") in result.stdout
    assert ("fitted the recommender on the rest (offsets and mixtures of the users and "
            "of the items, K = 8, 10 restarts each, seed 1)") in result.stdout


def test_evaluate_progress_and_default_k(tmp_path, ratings_file):
    result = fastem_cli("evaluate", ratings_file, "--threads", 1, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    names = [row[0] for row in table_rows(result.stdout, "predictor of the held-out")]
    assert names[3:] == ["Gaussian mixture (K = 8)", "recommender (K = 8)"]
    # Not a terminal: the mixture's line, then one line per part of the recommender.
    lines = result.stderr.splitlines()
    assert lines[0].startswith("EM: ")
    assert lines[1].startswith("recommender, offsets: ")
    assert lines[2].startswith("recommender, users' mixtures: 10 restarts, ")
    assert lines[3].startswith("recommender, items' mixtures: 10 restarts, ")


def test_evaluate_course_netflix(tmp_path, course_data_dir):
    path = course_data_dir / "netflix_incomplete.txt"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    result = fastem_cli("evaluate", path, "-k", 4, "--seed", 0, "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "1,200 users x 1,200 items" in result.stdout
    rmse = {row[0]: float(row[1])
            for row in table_rows(result.stdout, "predictor of the held-out ratings")}
    mixture = rmse["Gaussian mixture (K = 4)"]
    assert 0.8 < mixture < rmse["item mean"] < rmse["global mean"]
    assert rmse["user + item biases"] < rmse["item mean"]
    assert rmse["recommender (K = 8)"] < min(mixture, rmse["user + item biases"])


def test_baselines_on_a_tiny_case():
    # Two users, two items; ratings 4 (u0, i0), 2 (u0, i1), 5 (u1, i0).
    train = as_observed(sp.csr_matrix(([4.0, 2.0, 5.0], ([0, 0, 1], [0, 1, 0])),
                                      shape=(2, 2)))
    guess = baseline_predictions(train, np.array([1]), np.array([1]))
    mean = 11 / 3
    assert guess["global mean"][0] == pytest.approx(mean)
    assert guess["item mean"][0] == pytest.approx(2.0)
    b_i1 = (2 - mean) / (25 + 1)
    b_i0 = (9 - 2 * mean) / (25 + 2)
    b_u1 = (5 - mean - b_i0) / (10 + 1)
    assert guess["user + item biases"][0] == pytest.approx(mean + b_u1 + b_i1)


def test_split_ratings_rejects_a_bad_fraction():
    data = make_ratings(20, 5, 50, random_state=0)
    with pytest.raises(ValueError, match="between 0 and 1"):
        split_ratings(data, 1.0, 0)
    train, held = split_ratings(data, 0.5, 0)
    assert train.nnz + held.values.shape[0] == 50


def test_select_table_and_choice(tmp_path, ratings_file):
    result = fastem_cli("select", ratings_file, "--k", 1, 4, 2, "--seed", 0,
                        cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = table_rows(result.stdout, "K ")
    assert [row[0] for row in rows] == ["1", "2", "4"]
    table, best_k, _ = fastem.select_n_components(
        rating_io.load(ratings_file).to_observed(), [1, 2, 4], criterion="heldout",
        random_state=0, refit=False)
    for row, bic, heldout in zip(rows, table["bic"], table["heldout_log_likelihood"]):
        assert row[2] == f"{bic:.10g}" and row[3] == f"{heldout:.4f}"
    assert f"chosen K = {best_k}: the highest held-out log-likelihood" in result.stdout
    assert [row[0] for row in rows if row[-1] == "<- chosen"] == [str(best_k)]
    assert "K = 4: " in result.stderr  # one progress line per K


@pytest.mark.skipif(HAVE_MATPLOTLIB, reason="matplotlib is installed")
def test_select_plot_without_matplotlib_says_how_to_get_it(tmp_path, ratings_file):
    result = fastem_cli("select", ratings_file, "--k", 1, 2, "--plot", "k.png",
                        cwd=tmp_path)
    assert_one_line_error(result, "matplotlib", "fastem[plot]")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not HAVE_MATPLOTLIB, reason="matplotlib is not installed")
def test_select_plot_draws_the_curves(tmp_path, ratings_file):
    result = fastem_cli("select", ratings_file, "--k", 1, 2, "--plot", "k.png", "-q",
                        cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "k.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_as_in_the_readme(tmp_path):
    result = fastem_cli("demo", "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert ("20,000 users x 2,000 items, 1,000,000 ratings 1..5 with user and item "
            "offsets, 4 taste groups and a long tail of rarely rated items") in out
    rows = table_rows(out, "predictor of the held-out ratings")
    assert [row[0] for row in rows] == ["global mean", "item mean", "user + item biases",
                                        "Gaussian mixture (K = 8)", "recommender (K = 8)"]
    rmse = {row[0]: float(row[1]) for row in rows}
    # Ranked as on real ratings: the plain mixture behind the biases.
    assert (rmse["recommender (K = 8)"] < 0.99 * rmse["user + item biases"]
            < 0.99 * rmse["Gaussian mixture (K = 8)"])
    assert rmse["Gaussian mixture (K = 8)"] < rmse["item mean"] < rmse["global mean"]
    # The rank column orders the predictors by RMSE, 1 the best.
    ranks = {row[0]: int(row[3]) for row in rows}
    assert sorted(ranks, key=ranks.get) == sorted(rmse, key=rmse.get)
    assert ranks["recommender (K = 8)"] == 1
    shown = table_rows(out, "user  item")
    assert len(shown) == 8
    assert out.splitlines()[-9].split() == ["user", "item", "rating", "recommender",
                                            "user", "+", "item", "biases"]


def test_demo_small_and_its_options(tmp_path):
    result = fastem_cli("demo", "--n-users", 600, "--n-items", 80, "--n-ratings", 12_000,
                        "--groups", 3, "-k", 3, "--seed", 5, "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "600 users x 80 items, 12,000 ratings 1..5" in result.stdout
    assert "3 taste groups" in result.stdout and "seed 5" in result.stdout
    rows = table_rows(result.stdout, "predictor of the held-out ratings")
    assert rows[3][0] == "Gaussian mixture (K = 3)"
    assert sorted(int(row[3]) for row in rows) == [1, 2, 3, 4, 5]


def test_bench_small(tmp_path):
    result = fastem_cli("bench", "--n-users", 500, "--n-items", 50, "--n-ratings", 5000,
                        "-k", 3, "--repeats", 1, "--threads", 1, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = table_rows(result.stdout, "backend")
    backends = [row[0] for row in rows]
    assert backends[0] == "python"
    assert set(backends) <= {"python", "cython"}
    for row in rows:
        assert float(row[2]) > 0 and float(row[3]) > 0


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------

def test_missing_file(tmp_path):
    result = fastem_cli("evaluate", "nowhere.csv", "-k", 2, cwd=tmp_path)
    assert result.returncode == 1
    assert_one_line_error(result, "nowhere.csv", "no such file")


def test_bad_format(tmp_path, capsys, monkeypatch):
    (tmp_path / "broken.csv").write_text("u1,i1,4\nu2,i2,four\n")
    result = fastem_cli("fit", "broken.csv", "-k", 1, cwd=tmp_path)
    assert_one_line_error(result, "broken.csv, line 2", "not a number")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ratings.xyz").write_text("u1,i1,4\n")
    result = InProcess(capsys, "fit", "ratings.xyz", "-k", 1)
    assert_one_line_error(result, "ratings.xyz", "--format")


def test_k_too_large(tmp_path, ratings_file, capsys):
    result = fastem_cli("fit", ratings_file, "--model", "mixture", "-k", 401, cwd=tmp_path)
    assert_one_line_error(result, "-k 401", "400 users")
    result = InProcess(capsys, "select", ratings_file, "--k", 2, 500)
    assert_one_line_error(result, "--k 500")


def test_not_a_model_file(tmp_path, ratings_file):
    (tmp_path / "model.npz").write_bytes(b"not a zip archive")
    (tmp_path / "pairs.tsv").write_text("u1\tfilm-1\n")
    result = fastem_cli("predict", "model.npz", "pairs.tsv", "--ratings", ratings_file,
                        "-o", "out.tsv", cwd=tmp_path)
    assert_one_line_error(result, "model file")


def test_existing_output_needs_force(fitted, ratings_file):
    folder, _ = fitted
    before = (folder / "model.npz").read_bytes()
    result = fastem_cli("fit", ratings_file, "--model", "mixture", "-k", 2, "-o",
                        "model.npz", cwd=folder)
    assert_one_line_error(result, "model.npz exists", "--force")
    assert (folder / "model.npz").read_bytes() == before
    (folder / "pairs.tsv").write_text("u1\tfilm-1\n")
    (folder / "taken.tsv").write_text("keep me\n")
    result = fastem_cli("predict", "model.npz", "pairs.tsv", "--ratings", ratings_file,
                        "-o", "taken.tsv", cwd=folder)
    assert_one_line_error(result, "taken.tsv exists")
    assert (folder / "taken.tsv").read_text() == "keep me\n"
    result = fastem_cli("predict", "model.npz", "pairs.tsv", "--ratings", ratings_file,
                        "-o", "taken.tsv", "--force", cwd=folder)
    assert result.returncode == 0, result.stderr
    assert (folder / "taken.tsv").read_text().startswith("user\titem\tpredicted_rating\n")
    assert not [p for p in folder.iterdir() if p.name.endswith(".part")]


def test_fill_output_needs_force_too(tmp_path):
    np.savetxt(tmp_path / "incomplete.txt", np.array([[1, 0, 3], [2, 2, 0], [0, 5, 4]]),
               fmt="%d")
    assert fastem_cli("fit", "incomplete.txt", "--model", "mixture", "-k", 1, "--format",
                      "dense", "-q", cwd=tmp_path).returncode == 0
    (tmp_path / "filled.txt").write_text("keep me\n")
    result = fastem_cli("predict", "incomplete.k1.npz", "incomplete.txt", "--fill",
                        "--format", "dense", "-o", "filled.txt", cwd=tmp_path)
    assert_one_line_error(result, "filled.txt exists", "--force")
    assert (tmp_path / "filled.txt").read_text() == "keep me\n"


@pytest.mark.parametrize("model", ["mixture", "recommender"])
@pytest.mark.parametrize("failure, status", [(KeyboardInterrupt, 130),
                                             (OSError(28, "No space left on device"), 1)])
def test_a_run_stopped_while_writing_leaves_the_previous_file(fitted, ratings_file,
                                                             capsys, monkeypatch, failure,
                                                             status, model):
    folder, _ = fitted
    monkeypatch.chdir(folder)
    (folder / "old.npz").write_bytes((folder / "model.npz").read_bytes())
    before = (folder / "old.npz").read_bytes()

    def save_half_then_fail(self, handle, **labels):
        handle.write(b"PK\x03\x04 half a model")
        raise failure

    estimator = fastem.GaussianMixture if model == "mixture" else fastem.Recommender
    monkeypatch.setattr(estimator, "save", save_half_then_fail)
    options = ["--model", "mixture", "-k", 2] if model == "mixture" else ["--restarts", 1]
    result = InProcess(capsys, "fit", ratings_file, *options, "-o", "old.npz", "--force",
                       "-q")
    assert result.returncode == status
    assert (folder / "old.npz").read_bytes() == before
    assert not [p for p in folder.iterdir() if p.name.endswith(".part")]


# ---------------------------------------------------------------------------
# helpers, in process
# ---------------------------------------------------------------------------

def test_atomic_output_leaves_nothing_behind_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with _atomic_output(str(target), force=False) as handle:
            handle.write("half")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_atomic_output_never_replaces_a_file_that_appears_meanwhile(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(CommandError, match="exists"):
        with _atomic_output(str(target), force=False) as handle:
            handle.write("new")
            target.write_text("someone else's")
    assert target.read_text() == "someone else's"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
    with _atomic_output(str(target), force=True) as handle:
        handle.write("new")
    assert target.read_text() == "new"


def test_recommender_progress_on_a_terminal_and_elsewhere():
    stream = io.StringIO()
    progress = RecommenderProgress(stream, n_restarts=2, interactive=True)
    for step, label in enumerate(["offsets", "users 1", "users 2", "items 1", "items 2"],
                                 1):
        progress(step, 5, label)
    progress.close()
    text = stream.getvalue()
    assert text.startswith("\rrecommender [") and "step 2/5 (users 1 done)" in text
    summaries = [line.strip() for line in text.split("\n")]
    assert [line.rsplit("\r", 1)[-1].split(":")[0] for line in summaries if line] == [
        "recommender, offsets", "recommender, users' mixtures",
        "recommender, items' mixtures"]

    stream = io.StringIO()
    progress = RecommenderProgress(stream, n_restarts=3, interactive=False)
    for step, label in enumerate(["offsets", "items 1", "items 2", "items 3"], 1):
        progress(step, 4, label)
    progress.close()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert lines[0].startswith("recommender, offsets: ")
    assert lines[1].startswith("recommender, items' mixtures: 3 restarts, ")
    assert len(lines) == 2


def test_progress_bar_on_a_terminal_and_lines_elsewhere():
    stream = io.StringIO()
    progress = FitProgress(stream, tol=1e-6, max_iter=100, interactive=True)
    callback = progress(0, 2)
    for iteration, loglik in enumerate([-100.0, -50.0, -49.0, -48.99999], 1):
        callback(iteration, loglik)
    progress.close()
    text = stream.getvalue()
    assert text.startswith("\rrestart 1/2 [") and "initialising" in text
    assert text.endswith("restart 1/2: 4 iterations, log-likelihood -48.99999, 0.00 s\n")

    stream = io.StringIO()
    progress = FitProgress(stream, tol=1e-6, max_iter=100, interactive=False)
    progress(None, 1)(1, -10.0)
    progress.close()
    assert stream.getvalue().startswith("EM: 1 iteration, log-likelihood -10,")
    assert "\r" not in stream.getvalue()
