"""Every pairing strategy on TensorFlow, JAX and PyTorch.

Each backend runs `pairing_backend_scenarios.py` once, in its own process (with
the other scenarios of `conftest.CHAIN`)
(Keras picks its backend once, at import): it draws partners with every
strategy on the batches `batches()` gives (on JAX under `jax.jit`, as a
training step does), and the tests here check them against NumPy.
"""

import numpy as np
import pairing_backend_scenarios as scenarios
import pytest
from conftest import BACKENDS, nearest_sets, shared_result

import keras_mixup

NAMES = ("knn", "label_kernel", "random", "same_class", "same_class_knn")
K = scenarios.OPTIONS["knn_k"]


@pytest.fixture(params=BACKENDS)
def drawn(request):
    return shared_result(request, request.param, "pairings")


def _partners(drawn, name, form="batch"):
    size = len(scenarios.batches()[name][0])
    return np.array(drawn["draws"][f"{name}/{size}/{form}"]["values"])


def _flat(x):
    return np.asarray(x, "float64").reshape(len(x), -1)


def test_every_strategy_is_drawn():
    assert set(keras_mixup.pairing.NAMES) == set(NAMES)


def test_partner_indices_are_int32_of_the_batch_size_and_in_range(drawn):
    for name in NAMES:
        partners = len(scenarios.batches()[name][2])
        for size, form in scenarios.cases(name):
            index = drawn["draws"][f"{name}/{size}/{form}"]
            assert index["dtype"] == "int32" and index["native"], index
            assert index["shape"] == [size], (name, size, form, index)
            values = np.array(index["values"], int)
            rows = np.arange(size)
            if form == "batch":
                assert ((values >= 0) & (values < size)).all(), index
            else:
                inside = (values >= size) & (values < size + partners)
                assert (inside | (values == rows)).all(), (name, index)
    # A batch of one has no partner but itself.
    for name in NAMES:
        assert drawn["draws"][f"{name}/1/batch"]["values"] == [0], name


def test_random_pairing_is_a_permutation(drawn):
    partners = _partners(drawn, "random")
    assert sorted(partners) == list(range(scenarios.BATCH))
    # From a smaller partner batch: a permutation of it, cycled.
    cycled = _partners(drawn, "random", "partner") - scenarios.BATCH
    size = scenarios.PARTNERS
    assert sorted(cycled[:size]) == list(range(size))
    np.testing.assert_array_equal(cycled, np.resize(cycled[:size], len(cycled)))


def test_same_class_partners_share_the_class_or_are_themselves(drawn):
    classes = np.array(scenarios.CLASSES)
    partner_classes = np.array(scenarios.PARTNER_CLASSES)
    rows = np.arange(len(classes))
    alone = np.array([(classes == c).sum() == 1 for c in classes])
    absent = ~np.isin(classes, partner_classes)
    assert alone.any() and absent.any()
    for name in ("same_class", "same_class_knn"):
        partners = _partners(drawn, name)
        np.testing.assert_array_equal(partners == rows, alone, name)
        assert (classes[partners] == classes).all(), name
        partners = _partners(drawn, name, "partner")
        np.testing.assert_array_equal(partners == rows, absent, name)
        chosen = partner_classes[partners[~absent] - len(rows)]
        np.testing.assert_array_equal(chosen, classes[~absent], name)


def _nearest_in(query, candidates, k):
    """The k nearest rows of `candidates` to each row of `query`."""
    distances = ((query[:, None] - candidates[None]) ** 2).sum(-1)
    return [set(np.argsort(row, kind="stable")[:k]) for row in distances]


def test_knn_partners_are_among_the_k_nearest(drawn):
    x, _, partner_x, _ = scenarios.batches()["knn"]
    x, partner_x = _flat(x), _flat(partner_x)
    nearest = nearest_sets(x, K)
    for i, j in enumerate(_partners(drawn, "knn")):
        assert j in nearest[i], (i, j, nearest[i])
    nearest = _nearest_in(x, partner_x, K)
    for i, j in enumerate(_partners(drawn, "knn", "partner") - len(x)):
        assert j in nearest[i], (i, j, nearest[i])


def test_same_class_knn_partners_are_the_nearest_classmates(drawn):
    x = _flat(scenarios.batches()["knn"][0])
    classes = np.array(scenarios.CLASSES)
    for i, j in enumerate(_partners(drawn, "same_class_knn")):
        members = np.flatnonzero(classes == classes[i])
        if len(members) == 1:
            continue
        nearest = nearest_sets(x[members], K)[np.flatnonzero(members == i)[0]]
        assert j in members[list(nearest)], (i, j)


def _numpy_features(x):
    """`MeanPool(2)` and `CountSketch(4, seed=1)` of `x`, in NumPy."""
    flat = _flat(x)
    sketch = keras_mixup.CountSketch(dim=4, seed=1)
    signed = flat * sketch.signs(flat.shape[1])
    pad = -flat.shape[1] % 4
    signed = np.pad(signed, [(0, 0), (0, pad)])
    return {
        "MeanPool": flat.reshape(len(flat), 2, -1).mean(-1),
        "CountSketch": signed.reshape(len(flat), -1, 4).sum(1),
    }


def test_knn_features_and_the_partners_they_give(drawn):
    x, _, partner_x, _ = scenarios.batches()["knn"]
    expected = _numpy_features(x)
    partner_features = _numpy_features(partner_x)
    for kind, form in (("MeanPool", "batch"), ("CountSketch", "partner")):
        features = np.array(drawn["features"][f"{kind}/values"])
        np.testing.assert_allclose(features, expected[kind], atol=1e-5)
        index = drawn["features"][f"{kind}/{form}"]
        assert index["dtype"] == "int32" and index["shape"] == [len(x)]
        if form == "batch":
            nearest = nearest_sets(expected[kind], K)
            partners = index["values"]
        else:
            nearest = _nearest_in(expected[kind], partner_features[kind], K)
            partners = np.array(index["values"]) - len(x)
        for i, j in enumerate(partners):
            assert j in nearest[i], (kind, i, j, nearest[i])


def _kernel(query, candidates, *, within):
    """Each row's partner probabilities under the label kernel."""
    sigma = scenarios.OPTIONS["label_bandwidth"]
    distances = ((query[:, None] - candidates[None]) ** 2).sum(-1)
    weights = np.exp(-distances / (2 * sigma**2))
    if within:
        np.fill_diagonal(weights, 0.0)
    return weights / weights.sum(1, keepdims=True)


def test_label_kernel_draws_closer_labels_more_often(drawn):
    targets = np.array(scenarios.TARGETS, "float64")
    partner_targets = np.array(scenarios.PARTNER_TARGETS, "float64")
    rows = len(targets)
    expected = {
        "batch": np.pad(
            _kernel(targets, targets, within=True),
            [(0, 0), (0, len(partner_targets))],
        ),
        "partner": np.pad(
            _kernel(targets, partner_targets, within=False), [(0, 0), (rows, 0)]
        ),
    }
    draws = scenarios.DRAWS
    for form, probabilities in expected.items():
        counts = np.array(drawn["kernel_counts"][form])
        assert (counts.sum(1) == draws).all()
        spread = np.sqrt(draws * probabilities * (1 - probabilities))
        error = np.abs(counts - draws * probabilities)
        assert (error <= 5 * spread + 1).all(), (form, counts)
        # A partner much likelier than another is drawn more often.
        likelier = probabilities[:, :, None] > probabilities[:, None] + 0.2
        assert (counts[:, :, None] > counts[:, None])[likelier].all(), counts


def test_equal_seeds_draw_equal_partners_and_others_others(drawn):
    for name in NAMES:
        assert drawn["reproducible"][name] == [True, True], name


def test_bad_arguments_raise_a_value_error_naming_them(drawn):
    expected = {
        "labels_missing": "`pairing='same_class'` needs labels",
        "partner_labels_missing": "labels on the partner batch",
        "class_ids_for_label_kernel": "compares continuous labels",
        "inputs_missing": "`pairing='knn'` needs the inputs",
        "bad_knn_k": "`knn_k` must be an int >= 1",
        "feature_sizes_differ": "received 6 and 3",
        "bad_bandwidth": "`label_bandwidth` must be a finite number > 0",
        "unknown_option": "Unknown pairing option(s) ['knn_kk']",
    }
    assert set(drawn["errors"]) == set(expected)
    for case, message in expected.items():
        assert message in (drawn["errors"][case] or ""), (case, drawn["errors"])


@pytest.mark.parametrize("drawn", ["jax"], indirect=True)
def test_under_jax_jit_partners_and_seed_state_are_those_of_eager(drawn):
    for case, checks in drawn["jit_as_eager"].items():
        assert checks == [True, True, True], case
    assert "(class ids)" in (drawn["jit_errors"]["class_ids_for_label_kernel"])


def test_tensorflow_is_imported_only_on_tensorflow(drawn):
    on_tensorflow = drawn["backend"] == "tensorflow"
    assert drawn["tensorflow_imported"] == on_tensorflow
