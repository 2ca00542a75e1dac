"""TensorFlow's AutoGraph never converts keras_mixup's code.

A `tf.function` with AutoGraph on (the default; Keras's TensorFlow trainer,
`Dataset.map`) converts every function its code calls unless the function
carries TensorFlow's do-not-convert mark: parsing, rewriting and recompiling
the package's code took most of the tracing. keras_mixup is written with
explicit control flow, so it marks its entry points
(`keras_mixup.backend.not_converted`). These tests spy on AutoGraph's
conversion entry (`api._convert_actual`, which `converted_call` runs for
each entity it converts) and fail on any function of a `keras_mixup`
module it reaches.
"""

import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.autograph.impl import api as autograph_api

import keras_mixup
from keras_mixup import backend, blending

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture
def converted(monkeypatch):
    """The names of the entities AutoGraph converts while the test runs;
    the XLA probe is run afresh (it is cached once per process)."""
    names = []
    convert = autograph_api._convert_actual

    def spy(entity, program_ctx):
        module = getattr(entity, "__module__", None) or ""
        names.append(f"{module}.{getattr(entity, '__qualname__', entity)}")
        return convert(entity, program_ctx)

    monkeypatch.setattr(autograph_api, "_convert_actual", spy)
    monkeypatch.setattr(blending, "_xla_available", None)
    return names


def ours(names):
    return [name for name in names if name.startswith("keras_mixup")]


def batch(size=8):
    x = np.random.default_rng(0).random((size, 8, 8, 3), dtype="float32")
    return tf.constant(x), tf.constant(np.arange(size) % 10)


def traced(function, *args):
    """Runs `function` once, called from a `tf.function` with AutoGraph on
    (whose own function, of this module, AutoGraph converts)."""
    return tf.function(lambda *a: function(*a), autograph=True)(*args)


def small_model(*layers):
    return keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Flatten(),
            *layers,
            keras.layers.Dense(10),
        ]
    )


def mix_of(model):
    return lambda x, y: model.mix(x, y)[:3]


#: What each test traces: built outside the `tf.function` (they hold
#: variables), called in it with `(x, y)`.
CASES = {
    "Mixup.mix": lambda: keras_mixup.Mixup(alpha=0.2, num_classes=10).mix,
    "Mixup.draw": lambda: keras_mixup.Mixup(alpha=0.2, num_classes=10).draw,
    "the switch, mapped": lambda: keras_mixup.Mixup(
        alpha=0.8, cutmix_alpha=1.0, switch_prob=0.5, num_classes=10
    ),
    "CutMix.draw": lambda: keras_mixup.CutMix(alpha=1.0, num_classes=10).draw,
    "CutMix, mapped": lambda: keras_mixup.CutMix(alpha=1.0, num_classes=10),
    "MixupModel.mix": lambda: mix_of(
        keras_mixup.MixupModel(small_model(), alpha=0.2, num_classes=10)
    ),
    "MixupModel.mix, latent": lambda: mix_of(
        keras_mixup.MixupModel(
            small_model(keras_mixup.MixupLayer()),
            alpha=0.2,
            num_classes=10,
            mix_at="latent",
        )
    ),
    "sample_lambda": lambda: (
        lambda x, y: keras_mixup.sample_lambda([8], 0.2, seed=(1, 2))
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_autograph_converts_no_keras_mixup_function(converted, case):
    x, y = batch()
    function = CASES[case]()
    if case.endswith(".draw"):
        draw = function
        function = lambda x, y: draw(8, x, y)  # noqa: E731
    outputs = traced(function, x, y)
    assert tf.nest.flatten(outputs), "nothing was traced"
    # The spy sees the conversions: the test's own function is converted.
    assert any(name.startswith(__name__) for name in converted), converted
    assert not ours(converted), ours(converted)


def test_a_gan_step_converts_no_keras_mixup_function(converted):
    def mlp(inputs, outputs):
        return keras.Sequential(
            [keras.Input((inputs,)), keras.layers.Dense(outputs)]
        )

    gan = keras_mixup.MixupGAN(mlp(2, 4), mlp(4, 1), latent_dim=2, seed=0)
    real = tf.constant(np.ones((8, 4), "float32"))

    def step(real):
        lam = gan.draw_lambda(8, (1, 2))
        return gan.discriminator_batch(real, real * 0.0, lam)

    mixed, lam = traced(step, real)
    assert mixed.shape == (8, 4) and lam.shape == (8,)
    assert not ours(converted), ours(converted)


@pytest.mark.parametrize("form", ["tuples", "dicts"])
def test_mix_with_maps_without_converting_keras_mixup(converted, form):
    x, y = batch()
    if form == "tuples":
        elements, partner_elements = (x, y), x[::-1]
    else:
        elements = {"images": x, "labels": y}
        partner_elements = {"images": x[::-1], "labels": y[::-1]}
    dataset = tf.data.Dataset.from_tensor_slices(elements).batch(4)
    partners = tf.data.Dataset.from_tensor_slices(partner_elements).batch(4)
    mixed = list(keras_mixup.mix_with(dataset, partners, seed=0))
    images = [m[0] if form == "tuples" else m["images"] for m in mixed]
    assert [tuple(m.shape) for m in images] == [(4, 8, 8, 3)] * 2
    assert not ours(converted), ours(converted)


def test_the_marks_are_on_the_entry_points():
    marked = [
        keras_mixup.sample_lambda,
        keras_mixup.draws.sample_lambda_tf,
        keras_mixup.Mixup,
        keras_mixup.Mixup.draw,
        keras_mixup.Mixup.mix,
        keras_mixup.MixupModel.mix,
        keras_mixup.MixupModel.train_step,
        keras_mixup.MixupModel.test_step,
        keras_mixup.MixupGAN.train_step,
        keras_mixup.MixupGAN.test_step,
        keras_mixup.engine.MixingEngine.mix,
        keras_mixup.engine.MixingEngine.apply_padded,
    ]
    for entity in marked:
        assert autograph_api.is_autograph_artifact(entity), entity
    # what `tf.autograph.experimental.do_not_convert` marks, too
    assert backend.not_converted(lambda: 1).autograph_info__ == frozenset()
    with pytest.raises(KeyError):
        backend.not_converted_methods("missing")(type("C", (), {}))


def test_the_mark_imports_no_tensorflow_under_jax():
    code = (
        "import sys, keras_mixup\n"
        "assert keras_mixup.Mixup.mix.autograph_info__ == frozenset()\n"
        "print('tensorflow' in sys.modules)\n"
    )
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert result.stdout.split()[-1] == "False", result.stdout
