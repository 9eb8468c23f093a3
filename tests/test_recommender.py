"""fastem.Recommender: the documented composition (docs/model.md, section 9), ids,
recommendations, fold-in, model files and determinism."""

import io

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal

import fastem
from fastem import ModelFileError, NotFittedError, Recommender
from fastem.datasets import make_ratings


@pytest.fixture(scope="module")
def triples():
    """(users, items, ratings) with string ids: 400 users x 120 items, 6,000 ratings."""
    data = make_ratings(400, 120, 6000, n_groups=4, random_state=7)
    csr = data.to_csr().tocoo()
    users = np.array([f"u{r}" for r in csr.row])
    items = np.array([f"film {c}" for c in csr.col])
    return users, items, csr.data.astype(np.float64)


@pytest.fixture(scope="module")
def fitted(triples):
    return Recommender(n_restarts=3, random_state=0).fit_triples(*triples)


def _composition(model, users, items):
    """mu + b_u + b_i + the averaged corrections, clipped: written out."""
    user_index = {u: k for k, u in enumerate(model.user_ids_.tolist())}
    item_index = {i: k for k, i in enumerate(model.item_ids_.tolist())}
    out = []
    for user, item in zip(users.tolist(), items.tolist()):
        u, i = user_index.get(user, -1), item_index.get(item, -1)
        value = model.global_mean_
        value += model.user_bias_[u] if u >= 0 else 0.0
        value += model.item_bias_[i] if i >= 0 else 0.0
        if i >= 0:
            side = model.users_
            post = side.factors[u].astype(np.float64) if u >= 0 else side.weights
            value += np.mean([post[r] @ side.means[r][:, i].astype(np.float64)
                              for r in range(side.weights.shape[0])])
            if u >= 0:
                side = model.items_
                value += np.mean([side.factors[i, r].astype(np.float64)
                                  @ side.means[r][:, u].astype(np.float64)
                                  for r in range(side.weights.shape[0])])
        out.append(min(max(value, model.rating_range_[0]), model.rating_range_[1]))
    return np.array(out)


def test_predictions_are_the_documented_composition(fitted, triples):
    users, items, ratings = triples
    pick = np.random.default_rng(0).choice(users.shape[0], 300, replace=False)
    pairs = (users[pick], items[np.random.default_rng(1).permutation(pick)])
    # The means and posteriors are kept in float32: agreement to their precision.
    assert_allclose(fitted.predict(*pairs), _composition(fitted, *pairs), rtol=1e-6)
    assert fitted.global_mean_ == pytest.approx(ratings.mean(), rel=1e-12)


def test_the_offsets_are_the_regularised_least_squares_fixed_point(fitted, triples):
    users, items, ratings = triples
    u = np.searchsorted(fitted.user_ids_, users)
    i = np.searchsorted(fitted.item_ids_, items)
    centred = ratings - fitted.global_mean_
    # The last sweep updates the users given the items: exactly their equation.
    users_side = np.bincount(u, centred - fitted.item_bias_[i]) / (
        fitted.user_bias_strength + np.bincount(u))
    assert_allclose(fitted.user_bias_, users_side, rtol=1e-12, atol=1e-15)
    residuals = centred - fitted.user_bias_[u] - fitted.item_bias_[i]
    assert fitted.residual_variance_ == pytest.approx(np.mean(residuals**2), rel=1e-12)


def test_the_mixtures_have_the_map_settings(fitted):
    for side in (fitted.users_, fitted.items_):
        assert side.weights.shape == (3, 8)
        assert side.variance == pytest.approx(1.5 * fitted.residual_variance_)
        assert_allclose(side.factors.sum(axis=2), 1.0, rtol=1e-5)


def test_unknown_ids_get_finite_predictions_from_the_offsets(fitted):
    known_user, known_item = fitted.user_ids_[0], fitted.item_ids_[0]
    users = np.array(["nobody", known_user, "nobody"])
    items = np.array([known_item, "no film", "no film"])
    predicted = fitted.predict(users, items)
    assert np.isfinite(predicted).all()
    assert_allclose(predicted, _composition(fitted, users, items), rtol=1e-6)
    low, high = fitted.rating_range_
    assert predicted[2] == pytest.approx(min(max(fitted.global_mean_, low), high))
    assert predicted[1] == pytest.approx(
        np.clip(fitted.global_mean_ + fitted.user_bias_[0], low, high))


def test_recommend_never_returns_a_rated_item(fitted, triples):
    users, items, _ = triples
    chosen = fitted.user_ids_[:25]
    recommended = fitted.recommend(chosen, n=10)
    assert len(recommended) == 25
    rated = {}
    for user, item in zip(users.tolist(), items.tolist()):
        rated.setdefault(user, set()).add(item)
    for user, (row, row_scores) in zip(chosen.tolist(), recommended):
        assert row.shape == row_scores.shape == (10,)
        assert not rated[user] & set(row.tolist())
        assert (np.diff(row_scores) <= 0).all()
        assert_allclose(row_scores, fitted.predict(np.full(10, user), row), rtol=1e-12)
        unrated = [i for i in fitted.item_ids_.tolist() if i not in rated[user]]
        best = max(fitted.predict(np.full(len(unrated), user), np.array(unrated)))
        assert row_scores[0] == pytest.approx(best)
    # Every unrated item, and no more, when n is larger.
    heavy = max(rated, key=lambda user: len(rated[user]))
    (row, _), = fitted.recommend([heavy], n=500)
    assert set(row.tolist()) == set(fitted.item_ids_.tolist()) - rated[heavy]
    # Given pairs to leave out instead, only those are left out.
    (row, _), = fitted.recommend(chosen[:1], n=120, exclude=([], []))
    assert set(row.tolist()) == set(fitted.item_ids_.tolist())


def test_model_files_round_trip(fitted, triples):
    users, items, _ = triples
    buffer = io.BytesIO()
    fitted.save(buffer)
    buffer.seek(0)
    loaded = fastem.load(buffer)
    assert isinstance(loaded, Recommender)
    assert loaded.get_params() == fitted.get_params()
    assert_array_equal(loaded.predict(users[:500], items[:500]),
                       fitted.predict(users[:500], items[:500]))


def test_damaged_recommender_files_are_refused(fitted):
    buffer = io.BytesIO()
    fitted.save(buffer)
    members = dict(np.load(io.BytesIO(buffer.getvalue()), allow_pickle=False))
    for change in (lambda m: m.update(user_bias=m["user_bias"][:-1]),
                   lambda m: m.update(users_means=m["users_means"] * np.nan),
                   lambda m: m.pop("global"),
                   lambda m: m.update(settings=np.array('{"sides": "nobody"}'))):
        damaged = dict(members)
        change(damaged)
        out = io.BytesIO()
        np.savez(out, **damaged)
        out.seek(0)
        with pytest.raises(ModelFileError):
            fastem.load(out)


def test_fold_in_of_a_training_user_reproduces_training(fitted, triples):
    users, items, ratings = triples
    user = fitted.user_ids_[5]
    mine = users == user
    folded = Recommender(n_restarts=3, random_state=0).fit_triples(*triples)
    before = folded.predict(np.full(120, user), fitted.item_ids_)
    folded.fold_in(users[mine], items[mine], ratings[mine])
    assert_allclose(folded.predict(np.full(120, user), fitted.item_ids_), before,
                    rtol=1e-6)


def test_fold_in_of_a_new_user_uses_their_ratings(fitted, triples):
    users, items, ratings = triples
    model = Recommender(n_restarts=3, random_state=0).fit_triples(*triples)
    prior_only = model.predict(np.full(120, "newcomer"), model.item_ids_)
    # The newcomer rates like an existing user.
    like = model.user_ids_[9]
    mine = users == like
    model.fold_in(np.full(mine.sum(), "newcomer"), items[mine], ratings[mine])
    assert "newcomer" in model.user_ids_.tolist()
    after = model.predict(np.full(120, "newcomer"), model.item_ids_)
    twin = model.predict(np.full(120, like), model.item_ids_)
    assert not np.allclose(after, prior_only)
    # The same offset and user posteriors as the twin; only the items' side,
    # which never saw the newcomer, is missing.
    items_side = np.array([np.mean([model.items_.factors[i, r].astype(np.float64)
                                    @ model.items_.means[r][:, 9] for r in range(3)])
                           for i in range(120)])
    unclipped = (after > model.rating_range_[0]) & (after < model.rating_range_[1]) & \
        (twin > model.rating_range_[0]) & (twin < model.rating_range_[1])
    assert_allclose(after[unclipped] + items_side[unclipped], twin[unclipped], rtol=1e-5)


def test_same_seed_same_model_and_threads_agree(triples):
    one = Recommender(n_restarts=2, random_state=3, n_threads=1).fit_triples(*triples)
    again = Recommender(n_restarts=2, random_state=3, n_threads=1).fit_triples(*triples)
    two = Recommender(n_restarts=2, random_state=3, n_threads=2).fit_triples(*triples)
    users, items, _ = triples
    assert_array_equal(one.predict(users, items), again.predict(users, items))
    assert_allclose(two.predict(users, items), one.predict(users, items), rtol=1e-10)


def test_sides_and_a_sparse_matrix_with_ids(triples):
    users, items, ratings = triples
    user_ids, rows = np.unique(users, return_inverse=True)
    item_ids, cols = np.unique(items, return_inverse=True)
    matrix = sp.csr_matrix((ratings, (rows, cols)))
    both = Recommender(n_restarts=2, random_state=0).fit(matrix, user_ids=user_ids,
                                                         item_ids=item_ids)
    same = Recommender(n_restarts=2, random_state=0).fit_triples(users, items, ratings)
    assert_array_equal(both.predict(users, items), same.predict(users, items))
    users_only = Recommender(n_restarts=2, sides="users", random_state=0).fit(matrix)
    assert users_only.items_ is None and users_only.users_ is not None
    assert np.isfinite(users_only.predict(rows, cols)).all()


def test_scores_and_that_it_beats_the_offsets_alone(triples):
    users, items, ratings = triples
    test = np.random.default_rng(0).random(ratings.shape[0]) < 0.2
    model = Recommender(n_restarts=3, random_state=0).fit_triples(
        users[~test], items[~test], ratings[~test])
    scores = model.score(users[test], items[test], ratings[test])
    errors = model.predict(users[test], items[test]) - ratings[test]
    assert scores.rmse == pytest.approx(np.sqrt(np.mean(errors**2)))
    assert scores.mae == pytest.approx(np.mean(np.abs(errors)))
    offsets = Recommender(n_restarts=1, mean_prior_strength=1e12, random_state=0)
    offsets.fit_triples(users[~test], items[~test], ratings[~test])
    # make_ratings plants taste groups: the mixtures find what offsets cannot.
    assert scores.rmse < 0.97 * offsets.score(users[test], items[test], ratings[test]).rmse


def test_bad_input_and_settings(triples):
    users, items, ratings = triples
    with pytest.raises(NotFittedError, match="call fit"):
        Recommender().predict(["a"], ["b"])
    with pytest.raises(ValueError, match="more than once"):
        Recommender().fit_triples(["a", "a"], ["x", "x"], [1.0, 2.0])
    with pytest.raises(ValueError, match="same length"):
        Recommender().fit_triples(["a"], ["x", "y"], [1.0])
    with pytest.raises(ValueError, match="finite"):
        Recommender().fit_triples(["a"], ["x"], [np.nan])
    with pytest.raises(TypeError, match="fit_triples"):
        Recommender().fit(np.ones((3, 3)))
    for settings, pattern in (({"sides": "all"}, "sides='all' is invalid"),
                              ({"variance_scale": 0}, "variance_scale=0 is invalid"),
                              ({"n_restarts": 0}, "n_restarts=0 is invalid"),
                              ({"mean_prior_strength": -1}, "mean_prior_strength")):
        with pytest.raises(ValueError, match=pattern):
            Recommender(**settings).fit_triples(users, items, ratings)


def test_tune_chooses_from_the_candidates_on_held_out_ratings(triples):
    users, items, ratings = triples
    user_ids, rows = np.unique(users, return_inverse=True)
    item_ids, cols = np.unique(items, return_inverse=True)
    matrix = sp.csr_matrix((ratings, (rows, cols)))
    model = Recommender(n_restarts=2, random_state=0).tune(
        matrix, candidates={"variance_scale": [0.5, 2.0], "mean_prior_strength": [1.0, 30.0],
                            "n_components": [2, 6]})
    assert len(model.tuning_) == 6
    chosen = {name: getattr(model, name)
              for name in ("variance_scale", "mean_prior_strength", "n_components")}
    assert chosen["mean_prior_strength"] in (1.0, 30.0) and chosen["n_components"] in (2, 6)
    # Each choice is the lowest validation error among the trials that varied it.
    first = model.tuning_[:2]
    assert chosen["variance_scale"] == min(first, key=lambda t: t["validation_rmse"])[
        "variance_scale"]
    assert hasattr(model, "users_") and model.users_.weights.shape == (
        2, chosen["n_components"])
    with pytest.raises(ValueError, match="candidates can only name"):
        Recommender().tune(matrix, candidates={"tol": [1e-3]})
