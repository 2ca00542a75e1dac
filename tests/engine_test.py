"""The engine: each option defined once, held by every entry point.

What a user relies on: every entry point takes the engine's options with the
same checks and messages, shows and saves them the same way, honours `fused`
on every path, reads its live alpha, and loads what the version before the
engine saved.
"""

import json
import pathlib
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_mixup
from keras_mixup import compat, options

DATA = pathlib.Path(__file__).parent / "data"
PACKAGE = pathlib.Path(keras_mixup.__file__).parent


def _backbone():
    return keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, activation="relu"),
            keras_mixup.MixupLayer(name="mix_hidden"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )


ENTRY_POINTS = {
    "Mixup": lambda **o: keras_mixup.Mixup(**o),
    "MixupLayer": lambda **o: keras_mixup.MixupLayer(**o),
    "MixupModel": lambda **o: keras_mixup.MixupModel(_backbone(), **o),
}

# Every option but alpha and seed, at a value other than its default.
NON_DEFAULTS = {
    "num_classes": 3,
    "label_smoothing": 0.1,
    "mode": "batch",
    "pairing": "knn",
    "knn_k": 2,
    "knn_features": keras_mixup.MeanPool(2),
    "prob": 0.5,
    "fused": False,
}


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_every_entry_point_takes_shows_and_saves_the_options(entry):
    obj = ENTRY_POINTS[entry](alpha=0.4, seed=7, **NON_DEFAULTS)
    config = obj.get_config()
    for name, value in NON_DEFAULTS.items():
        assert getattr(obj, name) == value, name
    assert config["alpha"] == 0.4 and config["seed"] == 7
    assert config["knn_features"]["class_name"] == "MeanPool"
    restored = type(obj).from_config(config)
    for name, value in NON_DEFAULTS.items():
        assert getattr(restored, name) == value, name
    assert restored.get_config() == config
    if entry == "Mixup":
        shown = repr(obj)
        # The options that take effect, once each; not those the pairing
        # and variant ignore, nor the model's.
        for name in keras_mixup.Mixup(
            **NON_DEFAULTS
        ).engine.settings.saved_names:
            assert shown.count(f" {name}=") + shown.count(f"({name}=") == 1
        for name in ("label_bandwidth", "clean_loss_weight", "cutmix_alpha"):
            assert f"{name}=" not in shown, name
        assert "fused=False" in shown


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize(
    "options, match",
    [
        ({"mode": "all"}, r"`mode` must be one of \('elem', 'batch'\)"),
        ({"knn_k": 0}, "`knn_k` must be an int >= 1"),
        ({"fused": "yes"}, r"`fused` must be True .*'yes'"),
        ({"label_smoothing": 1.0}, r"`label_smoothing` must be .*\[0, 1\)"),
        ({"knn_features": 3}, "`knn_features` must be None or a callable"),
        (
            {"colour": "red"},
            r"(unknown option\(s\) \['colour'\]|Unrecognized keyword "
            r"arguments passed to Mixup\w*: \{'colour': 'red'\})",
        ),
    ],
)
def test_every_entry_point_checks_the_options_alike(entry, options, match):
    with pytest.raises((ValueError, TypeError), match=match):
        ENTRY_POINTS[entry](**options)


def test_clean_loss_weight_is_taken_by_mixup_model_only():
    model = ENTRY_POINTS["MixupModel"](clean_loss_weight=1.0)
    assert model.clean_loss_weight == 1.0
    assert model.get_config()["clean_loss_weight"] == 1.0
    for entry in ("Mixup", "MixupLayer"):
        with pytest.raises(
            ValueError, match=r"unknown option.*clean_loss_weight"
        ):
            ENTRY_POINTS[entry](clean_loss_weight=1.0)


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize(
    "given, match",
    [
        (
            {"knn_k": 3},
            r"`knn_k`, which only the knn pairings .*pairing='random'",
        ),
        (
            {"knn_features": keras_mixup.MeanPool(2)},
            r"`knn_features`, which only the knn",
        ),
        ({"label_bandwidth": 2.0}, r"`label_bandwidth`, which only C-Mixup"),
        ({"switch_prob": 0.3}, r"`switch_prob`, which only the mixup/CutMix"),
        (
            {"cutmix_minmax": (0.2, 0.4)},
            r"`cutmix_minmax`, which only the cutmix",
        ),
        ({"correct_lam": False}, r"`correct_lam`, which only the cutmix"),
        ({"axes": (1, 2)}, r"`axes`, which only the variants that cut"),
        (
            {"variant": "cutmix", "cutmix_alpha": 1.0, "switch_prob": 0.2},
            r"`switch_prob`, .*variant='cutmix'",
        ),
    ],
)
def test_an_option_nothing_chosen_uses_is_refused(entry, given, match):
    with pytest.raises(ValueError, match=match):
        ENTRY_POINTS[entry](**given)


def test_the_box_options_are_refused_where_no_box_is_seen():
    for name, value in (
        ("bounding_box_format", "xyxy"),
        ("min_box_visibility", 0.2),
    ):
        with pytest.raises(ValueError, match=rf"unknown option.*{name}"):
            ENTRY_POINTS["MixupModel"](variant="cutmix", **{name: value})
        cut = keras_mixup.Mixup(variant="cutmix", **{name: value})
        assert getattr(cut, name) == value
    # mixup checks boxes against their format, and moves none.
    assert keras_mixup.Mixup(bounding_box_format="xyxy").bounding_box_format
    with pytest.raises(
        ValueError, match="`min_box_visibility`, which only the variants"
    ):
        keras_mixup.Mixup(min_box_visibility=0.2)


def test_mix_labels_is_refused_where_the_entry_point_decides_it():
    with pytest.raises(ValueError, match=r"unknown option.*mix_labels"):
        ENTRY_POINTS["MixupLayer"](mix_labels=False)
    # A MixupModel mixes the labels or the loss: it says what to use.
    with pytest.raises(ValueError, match=r"takes no `mix_labels`.*MixupLayer"):
        ENTRY_POINTS["MixupModel"](mix_labels=False)


def test_an_option_the_entry_point_does_not_take_lists_what_it_takes():
    with pytest.raises(ValueError) as error:
        keras_mixup.MixupGAN(
            keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)]),
            keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]),
            latent_dim=2,
            pairing="knn",
        )
    assert "MixupGAN got unknown option(s) ['pairing']" in str(error.value)
    assert "['alpha', 'seed', 'prob']" in str(error.value)


# --- fused is honoured on every path ----------------------------------------


def _xla_functions(graph_def):
    """The names of the XLA-compiled functions a graph holds or calls."""
    names = [
        f.signature.name
        for f in graph_def.library.function
        if f.attr["_XlaMustCompile"].b
    ]
    nodes = [
        node.name for node in graph_def.node if node.attr["_XlaMustCompile"].b
    ]
    return names + nodes


def _dataset_graph(dataset):
    serialized = dataset._as_serialized_graph(
        external_state_policy=tf.data.experimental.ExternalStatePolicy.IGNORE
    )
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(serialized.numpy())
    return graph_def


def _pipelines(fused, mix_labels):
    x = np.random.default_rng(0).uniform(size=(8, 3)).astype("float32")
    y = np.arange(8) % 4
    labelled = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    mixup = keras_mixup.Mixup(
        num_classes=4, mix_labels=mix_labels, fused=fused, seed=1
    )
    partners = labelled if mix_labels else labelled.map(lambda x, y: x)
    with_partners = keras_mixup.mix_with(
        labelled,
        partners,
        num_classes=4,
        mix_labels=mix_labels,
        fused=fused,
        seed=1,
    )
    return {"Mixup": labelled.map(mixup), "mix_with": with_partners}, mixup


@pytest.mark.parametrize("mix_labels", [True, False])
@pytest.mark.parametrize("fused", [True, False])
def test_fused_is_honoured_in_dataset_map_and_tf_function(fused, mix_labels):
    pipelines, mixup = _pipelines(fused, mix_labels)
    for name, dataset in pipelines.items():
        found = _xla_functions(_dataset_graph(dataset))
        assert bool(found) is fused, (name, found)
    x = tf.constant(np.eye(4, dtype="float32"))
    concrete = tf.function(mixup).get_concrete_function(x, tf.range(4))
    found = _xla_functions(concrete.graph.as_graph_def())
    assert bool(found) is fused, found


# --- one alpha ---------------------------------------------------------------


def test_alpha_reads_the_alpha_of_the_next_batch():
    layer = keras_mixup.MixupLayer(alpha=0.2)
    model = keras.Sequential([keras.Input((4,)), layer, keras.layers.Dense(2)])
    model.compile("sgd", "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).uniform(size=(8, 4)).astype("float32")
    y = np.arange(8) % 2
    seen = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: seen.append(layer.alpha)
    )
    schedule = keras_mixup.MixupSchedule(layer, alpha={1: 0.5})
    model.fit(x, y, epochs=2, verbose=0, callbacks=[schedule, record])
    assert seen == [0.2, 0.5]
    assert layer.get_config()["alpha"] == 0.2
    mixup = keras_mixup.Mixup(alpha=0.3)
    mixup.mixing_state.set(alpha=0.7)
    assert mixup.alpha == 0.7 and mixup.get_config()["alpha"] == 0.3
    gan = keras_mixup.MixupGAN(
        keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)]),
        keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]),
        latent_dim=2,
        alpha=None,
    )
    assert gan.alpha is None and gan.get_config()["alpha"] is None


# --- what the version before the engine saved still loads -------------------


def test_files_saved_by_version_0_1_load_and_predict_the_same():
    saved = np.load(DATA / "v0_1_predictions.npz")
    layer_model = keras.saving.load_model(DATA / "v0_1_mixup_layer.keras")
    mix = layer_model.get_layer("mix")
    assert (mix.alpha, mix.seed, mix.prob) == (0.3, 1, 0.5)
    # To float32 rounding: the installed TensorFlow and Keras may order a
    # matmul's sums otherwise than those that saved the predictions did.
    np.testing.assert_allclose(
        layer_model.predict(saved["x"], verbose=0),
        saved["layer"],
        rtol=1e-6,
        atol=1e-7,
    )
    model = keras.saving.load_model(DATA / "v0_1_mixup_model.keras")
    assert model.mix_points == ["input", "mix_hidden"]
    assert (model.alpha, model.num_classes, model.prob) == (0.4, 3, 0.75)
    assert (model.pairing, model.knn_k) == ("knn", 3)
    assert model.knn_features == keras_mixup.MeanPool(2)
    np.testing.assert_allclose(
        model.predict(saved["x"], verbose=0),
        saved["model"],
        rtol=1e-6,
        atol=1e-7,
    )
    config = json.loads((DATA / "v0_1_mixup.json").read_text())
    mixup = keras.saving.deserialize_keras_object(config)
    now = mixup.get_config()
    # knn_k and knn_features were saved though the same-class pairing
    # ignores them: dropped.
    saved = dict(config["config"])
    assert saved.pop("knn_k") == 2 and saved.pop("knn_features") is None
    assert "knn_k" not in now and "knn_features" not in now
    assert {name: now[name] for name in saved} == saved
    # Options added since take their defaults.
    for name in set(now) - set(config["config"]):
        assert now[name] == options.OPTIONS[name].default, name


# --- structure: no hidden protocols, private APIs behind one wrapper --------


def _package_sources():
    return {p.name: p.read_text() for p in PACKAGE.glob("*.py")}


def test_no_thread_local_state_or_id_keyed_registry():
    for name, source in _package_sources().items():
        assert "threading" not in source, name
        assert not re.search(r"\bid\(", source), name


def test_each_private_api_is_called_from_one_wrapper():
    private = (
        "_flatten_layers",
        "implementation_selection",
        "_compile_loss",
        "_loss_tracker",
        "keras.src",
        "_convert_input_args",
        "_allow_non_tensor_positional_args",
        "_sample_dirichlet",
    )
    for name, source in _package_sources().items():
        for api in private:
            used = re.search(rf"(?<!\w){api}\b", source)
            if name == "compat.py":
                assert used, api
            else:
                assert not used, (name, api)


def test_the_private_api_wrappers_work_on_this_install():
    # If Keras or TFP moves one of them, these calls fail loudly.
    inner = keras.layers.Dense(2)
    outer = keras.Sequential([keras.Input((3,)), inner])
    assert inner in compat.sublayers(outer)
    assert compat.sublayers(inner) == []
    assert compat.is_xla() is False
    inside = tf.function(lambda: tf.constant(compat.is_xla()), jit_compile=True)
    assert bool(inside()) is True
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(
                2, kernel_regularizer=keras.regularizers.L2(10.0)
            ),
        ]
    )
    model.compile("sgd", "mse")
    y, y_pred = tf.zeros([4, 2]), tf.ones([4, 2])
    assert float(compat.compiled_loss(model, y, y_pred)) == 1.0
    assert compat.loss_tracker(model).name == "loss"
    outer.compile(loss="mse", run_eagerly=True)
    outer.fit(np.zeros((2, 3)), np.ones((2, 2)), verbose=0)  # builds the loss
    loss = compat.compiled_loss(outer, np.ones((1, 2)), np.zeros((1, 2)))
    np.testing.assert_allclose(loss, 1.0)
    for name in ("tensorflow", "jax"):  # the torch one, in its scenarios
        assert callable(compat.backend_module(name).numpy.take)
    assert compat.in_tf_graph() is False
    assert bool(tf.function(lambda: tf.constant(compat.in_tf_graph()))())
    with compat.inputs_as_given(inner):
        assert inner._convert_input_args is False
    assert inner._convert_input_args is True


def test_every_module_has_all_and_the_readme_names_are_top_level():
    for path in PACKAGE.glob("*.py"):
        if path.name != "__init__.py":
            assert "__all__ = [" in path.read_text(), path.name
    for name in ("MeanPool", "CountSketch", "Mixup", "mix_with"):
        assert name in keras_mixup.__all__


# --- the options behave the same in the model --------------------------------


def test_mixup_model_smooths_labels_and_draws_one_lam_per_batch():
    eye = tf.eye(8)
    ids = tf.range(8)
    model = keras_mixup.MixupModel(
        keras.Sequential([keras.Input((8,)), keras.layers.Dense(8)]),
        num_classes=8,
        label_smoothing=0.2,
        prob=0.0,
    )
    _, labels, _, _ = model.mix(eye, ids)
    np.testing.assert_allclose(labels, 0.8 * np.eye(8) + 0.2 / 8, rtol=1e-6)
    model = keras_mixup.MixupModel(
        keras.Sequential([keras.Input((8,)), keras.layers.Dense(8)]),
        alpha=1.0,
        num_classes=8,
        mode="batch",
        seed=3,
    )
    for _ in range(3):
        x, labels, _, _ = model.mix(eye, ids)
        np.testing.assert_array_equal(x, labels)
        lam = np.diag(labels.numpy())
        moved = lam < 1
        assert moved.any() and np.ptp(lam[moved]) < 1e-6


def test_mixup_layer_takes_pairing_mode_and_num_classes():
    x = np.eye(8, dtype="float32")
    layer = keras_mixup.MixupLayer(alpha=1.0, mode="batch", seed=1)
    mixed = layer(x, training=True).numpy()
    lam = np.diag(mixed)
    assert np.ptp(lam[lam < 1]) < 1e-6
    layer = keras_mixup.MixupLayer(pairing="same_class")
    with pytest.raises(ValueError, match="`pairing='same_class'` needs labels"):
        layer(x, training=True)
    layer = keras_mixup.MixupLayer(alpha=1.0, num_classes=8, seed=2)
    out = layer({"images": x, "labels": np.arange(8)})
    np.testing.assert_allclose(out["labels"], out["images"], rtol=1e-6)
    # Nearest neighbours on the inputs: rows 2k and 2k + 1 are close.
    pairs = np.repeat(np.eye(4, dtype="float32"), 2, axis=0) * 10
    pairs += np.random.default_rng(0).uniform(size=(8, 4)).astype("float32")
    layer = keras_mixup.MixupLayer(alpha=1.0, pairing="knn", knn_k=1, seed=4)
    lam, partner, _ = layer.engine.draw(8, tf.constant(pairs), inputs_only=True)
    np.testing.assert_array_equal(partner, np.arange(8) ^ 1)
