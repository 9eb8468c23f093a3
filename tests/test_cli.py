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
from fastem.cli._progress import FitProgress
from fastem.datasets import make_ratings

HAVE_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
COMMANDS = ["fit", "predict", "evaluate", "select", "demo", "bench"]


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
    """``fastem fit ratings.csv -k 4 -o model.npz`` run once: (folder, result)."""
    folder = tmp_path_factory.mktemp("fit")
    result = fastem_cli("fit", ratings_file, "-k", 4, "-o", "model.npz", "--seed", 2,
                        cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder, result


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
    result = fastem_cli("fit", ratings_file, "-k", 2, "--quiet", "--covariance", "diag",
                        "--n-init", 2, "--threads", 1, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "(diag, 2 restarts, seed 0)" in result.stdout
    model = fastem.load(tmp_path / "ratings.k2.npz")
    assert model.variances_.shape == (2, 60)
    assert model.n_init == 2


def test_fit_dense_course_format(tmp_path):
    X = np.array([[5, 0, 1, 4], [4, 5, 0, 1], [0, 1, 5, 5], [1, 0, 4, 5], [5, 4, 1, 0]])
    np.savetxt(tmp_path / "small.txt", X, fmt="%d")
    result = fastem_cli("fit", "small.txt", "-k", 2, "--format", "dense", "-q",
                        cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "5 users x 4 items, 15 ratings" in result.stdout
    model = fastem.load(tmp_path / "small.k2.npz")
    assert model.column_labels_.tolist() == [0, 1, 2, 3]


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
    assert fastem_cli("fit", "incomplete.txt", "-k", 3, "--format", "dense", "-q",
                      cwd=tmp_path).returncode == 0
    result = fastem_cli("predict", "incomplete.k3.npz", "incomplete.txt", "--fill",
                        "--format", "dense", "-o", "filled.txt", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "completed the 30 x 8 matrix" in result.stdout
    model = fastem.load(tmp_path / "incomplete.k3.npz")
    filled = np.loadtxt(tmp_path / "filled.txt")
    assert_allclose(filled, model.fill(np.where(X == 0, np.nan, X)), rtol=1e-5)
    assert (filled[X > 0] == X[X > 0]).all()


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
                     "Gaussian mixture (K = 4)"]

    data = rating_io.load(ratings_file).to_observed()
    evaluation = evaluate_holdout(data, fastem.GaussianMixture(4, random_state=1), 0.2, 1)
    for row, (name, rmse, mae) in zip(rows, evaluation.scores):
        assert (row[0], row[1], row[2]) == (name, f"{rmse:.4f}", f"{mae:.4f}")
    assert float(rows[3][1]) < float(rows[1][1])  # planted groups: the mixture wins
    assert f"{evaluation.train.nnz:,} to fit" in result.stdout


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
    result = fastem_cli("demo", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "20,000 users x 2,000 items, 1,000,000 ratings" in out
    rmse = {row[0]: float(row[1])
            for row in table_rows(out, "predictor of the held-out ratings")}
    assert rmse["Gaussian mixture (K = 12)"] < 0.8 < rmse["item mean"]
    shown = table_rows(out, "user  item")
    assert len(shown) == 8


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
    result = fastem_cli("fit", ratings_file, "-k", 401, cwd=tmp_path)
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
    result = fastem_cli("fit", ratings_file, "-k", 2, "-o", "model.npz", cwd=folder)
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
    assert fastem_cli("fit", "incomplete.txt", "-k", 1, "--format", "dense", "-q",
                      cwd=tmp_path).returncode == 0
    (tmp_path / "filled.txt").write_text("keep me\n")
    result = fastem_cli("predict", "incomplete.k1.npz", "incomplete.txt", "--fill",
                        "--format", "dense", "-o", "filled.txt", cwd=tmp_path)
    assert_one_line_error(result, "filled.txt exists", "--force")
    assert (tmp_path / "filled.txt").read_text() == "keep me\n"


@pytest.mark.parametrize("failure, status", [(KeyboardInterrupt, 130),
                                             (OSError(28, "No space left on device"), 1)])
def test_a_run_stopped_while_writing_leaves_the_previous_file(fitted, ratings_file,
                                                             capsys, monkeypatch, failure,
                                                             status):
    folder, _ = fitted
    monkeypatch.chdir(folder)
    (folder / "old.npz").write_bytes((folder / "model.npz").read_bytes())
    before = (folder / "old.npz").read_bytes()

    def save_half_then_fail(self, handle, **labels):
        handle.write(b"PK\x03\x04 half a model")
        raise failure

    monkeypatch.setattr(fastem.GaussianMixture, "save", save_half_then_fail)
    result = InProcess(capsys, "fit", ratings_file, "-k", 2, "-o", "old.npz", "--force",
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
