"""Model files: save/load round trips, labels, and refusal of bad files."""

import io
import json
import warnings
import zipfile

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import fastem
from fastem import ConvergenceWarning, GaussianMixture, ModelFileError
from fastem._persist import FORMAT_VERSION


def _data(seed=0, n=40, d=6):
    rng = np.random.default_rng(seed)
    X = rng.integers(1, 6, size=(n, d)).astype(np.float64)
    X[rng.random(X.shape) < 0.3] = np.nan
    return X


def _fitted(covariance_type="spherical", **settings):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return GaussianMixture(3, covariance_type=covariance_type, random_state=0,
                               **settings).fit(_data())


def _members(path):
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def _write(path, members):
    with open(path, "wb") as handle:
        np.savez(handle, **members)


@pytest.mark.parametrize("covariance_type", ["spherical", "diag"])
def test_round_trip(tmp_path, covariance_type):
    model = _fitted(covariance_type, tol=1e-4, min_variance=0.1, n_init=2)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = fastem.load(path)
    for name in ("weights_", "means_", "variances_", "converged_", "n_iter_",
                 "log_likelihood_", "lower_bound_", "n_features_in_"):
        assert_array_equal(getattr(loaded, name), getattr(model, name), err_msg=name)
    # NaN != NaN, so missing_values is compared on its own.
    expected = model.get_params() | {"missing_values": loaded.missing_values}
    assert loaded.get_params() == expected
    assert np.isnan(loaded.missing_values)
    X = _data(seed=1)
    assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert_array_equal(loaded.fill(X), model.fill(X))
    assert loaded.row_labels_ is None and loaded.column_labels_ is None


def test_path_is_written_as_named_and_file_objects_work(tmp_path):
    model = _fitted()
    path = tmp_path / "model.fastem"
    model.save(str(path))
    assert path.is_file() and not (tmp_path / "model.fastem.npz").exists()
    buffer = io.BytesIO()
    model.save(buffer)
    buffer.seek(0)
    assert_array_equal(fastem.load(buffer).means_, model.means_)


def test_labels_round_trip(tmp_path):
    model = _fitted()
    path = tmp_path / "model.npz"
    items = [f"item {i}" for i in range(6)]
    model.save(path, row_labels=np.arange(100, 140), column_labels=items)
    loaded = fastem.load(path)
    assert_array_equal(loaded.row_labels_, np.arange(100, 140))
    assert list(loaded.column_labels_) == items
    loaded.save(tmp_path / "again.npz")  # keeps the labels it was loaded with
    assert list(fastem.load(tmp_path / "again.npz").column_labels_) == items
    with pytest.raises(ValueError, match="column_labels must have 6 entries"):
        model.save(path, column_labels=items[:5])
    with pytest.raises(ValueError, match="strings or numbers"):
        model.save(path, row_labels=[{"a": 1}])


def test_settings_are_json_and_version_is_stored(tmp_path):
    model = _fitted(n_init=np.int64(2))
    model.set_params(random_state=np.random.RandomState(0))
    path = tmp_path / "model.npz"
    model.save(path)
    members = _members(path)
    settings = json.loads(str(members["settings"]))
    assert settings["n_init"] == 2 and settings["random_state"] is None
    assert str(members["fastem_version"]) == fastem.__version__
    assert int(members["format_version"]) == FORMAT_VERSION


def test_loading_never_unpickles(tmp_path):
    model = _fitted()
    path = tmp_path / "model.npz"
    model.save(path)
    members = _members(path)
    members["means"] = np.array([object()], dtype=object)  # would need pickle
    _write(path, members)
    with pytest.raises(ModelFileError, match="cannot read"):
        fastem.load(path)


@pytest.mark.parametrize("change, message", [
    (lambda m: m.pop("variances"), "lacks \\['variances'\\]"),
    (lambda m: m.update(format=np.array("something else")), "not a fastem model file"),
    (lambda m: m.update(format_version=np.array(FORMAT_VERSION + 1)), "upgrade fastem"),
    (lambda m: m.update(variances=np.ones(4)), "inconsistent shapes"),
    (lambda m: m.update(means=np.ones(3)), "means must have shape"),
    (lambda m: m.update(weights=np.array([1.0, np.nan, 0.0])), "finite"),
    (lambda m: m.update(variances=np.array([1.0, 0.0, 1.0])), "variances must be positive"),
    (lambda m: m.update(covariance_type=np.array("full")), "unknown covariance_type"),
    (lambda m: m.update(settings=np.array("{not json")), "not valid JSON"),
    (lambda m: m.update(settings=np.array('{"n_components": 3, "shape": 1}')),
     "settings this fastem does not know"),
    (lambda m: m.update(settings=np.array('{"n_components": 3, "tol": -1}')),
     "invalid settings"),
    (lambda m: m.update(settings=np.array('{"n_components": 2}')), "n_components=2"),
    (lambda m: m.update(column_labels=np.arange(5)), "column_labels must have 6"),
    (lambda m: m.update(fit_info=np.zeros(2)), "fit_info"),
])
def test_inconsistent_files_are_rejected(tmp_path, change, message):
    model = _fitted()
    path = tmp_path / "model.npz"
    model.save(path)
    members = _members(path)
    change(members)
    _write(path, members)
    with pytest.raises(ModelFileError, match=message):
        fastem.load(path)


def test_damaged_and_foreign_files_are_rejected(tmp_path):
    model = _fitted()
    path = tmp_path / "model.npz"
    model.save(path)
    raw = path.read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(raw[: len(raw) // 2])
    text = tmp_path / "text.npz"
    text.write_text("not a model")
    single = tmp_path / "single.npy"
    np.save(single, np.ones(3))
    empty_zip = tmp_path / "empty.npz"
    with zipfile.ZipFile(empty_zip, "w"):
        pass
    for bad in (truncated, text, single, empty_zip):
        with pytest.raises(ModelFileError):
            fastem.load(bad)
    assert issubclass(ModelFileError, ValueError)
    with pytest.raises(FileNotFoundError):
        fastem.load(tmp_path / "absent.npz")


def test_initial_parameters_round_trip(tmp_path):
    means = np.full((3, 6), 3.0) + np.arange(3)[:, None]
    model = _fitted(means_init=means, weights_init=[0.2, 0.3, 0.5])
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = fastem.load(path)
    assert_array_equal(loaded.means_init, means)
    assert_array_equal(loaded.weights_init, [0.2, 0.3, 0.5])
    assert loaded.variances_init is None


class _Payload:
    """Unpickling it would create the file ``marker``: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("where", ["member", "whole file", "npy file"])
def test_a_pickle_payload_never_runs(tmp_path, where):
    marker = tmp_path / "code-ran"
    payload = np.array([_Payload(marker)], dtype=object)
    path = tmp_path / "model.npz"
    if where == "member":
        _fitted().save(path)
        members = _members(path)
        members["settings"] = payload
        with open(path, "wb") as handle:
            np.savez(handle, allow_pickle=True, **members)
    elif where == "whole file":
        import pickle

        path.write_bytes(pickle.dumps(_Payload(marker)))
    else:
        with open(path, "wb") as handle:
            np.save(handle, payload, allow_pickle=True)
    with pytest.raises(ModelFileError):
        fastem.load(path)
    assert not marker.exists()


def _saved_bytes():
    buffer = io.BytesIO()
    _fitted().save(buffer, column_labels=[f"c{i}" for i in range(6)])
    return buffer.getvalue()


def test_every_truncation_is_refused():
    raw = _saved_bytes()
    for size in range(0, len(raw), 7):
        with pytest.raises(ModelFileError):
            fastem.load(io.BytesIO(raw[:size]))


def test_tampered_bytes_are_refused_or_give_a_valid_model():
    # A changed byte may hit a part of the archive that nothing reads (a
    # timestamp, say): then the model loads, valid. Elsewhere zipfile, zlib or
    # NumPy fail in many ways (CRC, unsupported compression or zip version,
    # "encrypted" members, ...), and every one of them must be a ModelFileError.
    raw = _saved_bytes()
    rng = np.random.default_rng(0)
    refused = 0
    for position in rng.permutation(len(raw))[:400]:
        tampered = bytearray(raw)
        tampered[position] ^= int(rng.integers(1, 256))
        try:
            model = fastem.load(io.BytesIO(bytes(tampered)))
        except ModelFileError:
            refused += 1
            continue
        assert np.isfinite(model.means_).all() and (model.variances_ > 0).all()
        assert model.means_.shape == (3, 6)
    assert refused > 200


@pytest.mark.parametrize("change, message", [
    (lambda m: m.update(fit_info=np.array([0.5, 3.0, -1.0, -1.0])), "fit_info"),
    (lambda m: m.update(fit_info=np.array([1.0, np.nan, -1.0, -1.0])), "fit_info"),
    (lambda m: m.update(fit_info=np.array([1.0, np.inf, -1.0, -1.0])), "fit_info"),
    (lambda m: m.update(fit_info=np.array([1.0, 2.5, -1.0, -1.0])), "fit_info"),
    (lambda m: m.update(fit_info=np.array([1.0, 3.0, np.nan, -1.0])), "fit_info"),
    (lambda m: m.update(weights_init=np.full(4, 0.25)), "weights_init.*shape"),
    (lambda m: m.update(means_init=np.ones((3, 5))), "means_init.*shape"),
    (lambda m: m.update(variances_init=np.ones((3, 6))), "variances_init.*shape"),
    (lambda m: m.update(means_init=np.array([[np.inf] * 6] * 3)), "finite floats"),
    (lambda m: m.update(settings=np.array('{"n_components": 3, "weights_init": "x"}')),
     "does not know"),
    (lambda m: m.update(settings=np.array('{"n_components": 3, "n_threads": 100000}')),
     "n_threads"),
    (lambda m: m.update(settings=np.array('[3]')), "JSON object"),
    (lambda m: m.update(means=np.ones((3, 6), dtype=np.int64)), "must hold floats"),
    (lambda m: m.update(format=np.array(["fastem.GaussianMixture"])), "must be a string"),
    (lambda m: m.update(format_version=np.array(0)), "not supported"),
    (lambda m: m.update(row_labels=np.ones((2, 2))), "row_labels"),
], ids=["converged", "n_iter NaN", "n_iter inf", "n_iter fraction", "LL NaN",
        "weights_init", "means_init", "variances_init", "means_init inf",
        "initial in settings", "threads", "settings list", "int means", "format array",
        "version 0", "2-D labels"])
def test_more_tampered_members_are_rejected(tmp_path, change, message):
    path = tmp_path / "model.npz"
    _fitted(weights_init=[0.2, 0.3, 0.5]).save(path)
    members = _members(path)
    change(members)
    _write(path, members)
    with pytest.raises(ModelFileError, match=message):
        fastem.load(path)
