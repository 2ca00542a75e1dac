"""Bad input across the public API, and the documented edge cases.

Two tables drive the error tests; another API joins by adding rows:

- `BAD_ARGUMENTS`: `(callable, args, kwargs, error, match)` for
  constructors, methods (`Mixup.mix`, `MixupGAN.compile`) and plain
  functions, called eagerly: every API's argument errors, in one table.
- `BAD_BATCHES`: `(make_mixer, batch, error, match, dynamic_error)` for
  calls on a batch `(x, y)` or `(x, y, sample_weight)`, run eagerly, in a
  `tf.function` with an unknown batch size and in `Dataset.map`.
  `dynamic_error` is `(error, match)` when the batch size is only known at
  run time (a static check becomes a run-time assertion), else `None`.

Then the documented behaviours: an empty batch comes back empty; a NaN in
an input reaches only the rows that mix it, and mixing creates none; no
example is lost, duplicated or reordered through a pipeline.
"""

from typing import Any, NamedTuple

import numpy as np
import pytest
import tensorflow as tf
from conftest import decode_identity_rows

import keras_mixup
from keras_mixup import blending, pairing, state

NAN, INF = float("nan"), float("inf")


class BadArgument(NamedTuple):
    call: Any
    args: tuple
    kwargs: dict
    error: type
    match: str


def mixup(**kwargs):
    return keras_mixup.Mixup(**kwargs)


def mixup_for_input_context(context):
    return keras_mixup.Mixup(num_classes=3).for_input_context(context)


def sample(**kwargs):
    args = {"shape": [4], "alpha": 0.2, "seed": 1, **kwargs}
    return keras_mixup.sample_lambda(**args)


MATCH = {
    "alpha": r"`alpha` must be a finite number > 0.*received ",
    "num_classes": r"`num_classes` must be an int >= 2.*received ",
    "label_smoothing": r"`label_smoothing` must be a number in \[0, 1\); "
    r"received ",
    "mode": r"`mode` must be one of \('elem', 'batch'\).*received ",
    "seed": r"`seed` must be an int",
    "dtype": r"`dtype` must be one of \('float32', 'float64'\)",
    "shape": r"`shape` must be an int >= 0 or a list of them.*received ",
}


def _row(call, kwargs, received, error=ValueError):
    """A row whose message names the argument and the value received."""
    ((name, _),) = kwargs.items()
    return BadArgument(call, (), kwargs, error, MATCH[name] + received)


def bad_mixup(received="", **kwargs):
    return _row(mixup, kwargs, received)


def bad_sample(received="", error=ValueError, **kwargs):
    return _row(sample, kwargs, received, error)


# The other public constructors. Each builds its models when the row runs.


def backbone():
    import keras

    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])


def mixup_model(**kwargs):
    return keras_mixup.MixupModel(backbone(), **kwargs)


def mixup_gan(**kwargs):
    import keras

    generator = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
    discriminator = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    args = {"latent_dim": 2, **kwargs}
    return keras_mixup.MixupGAN(generator, discriminator, **args)


def mixup_schedule(**kwargs):
    return keras_mixup.MixupSchedule(keras_mixup.MixupLayer(), **kwargs)


def datasets():
    ds = tf.data.Dataset.from_tensor_slices((tf.eye(4), tf.range(4)))
    return ds.batch(2), tf.data.Dataset.from_tensor_slices(tf.eye(4)).batch(2)


def mix_with(**kwargs):
    return keras_mixup.mix_with(*datasets(), **kwargs)


MATCH.update(
    {
        "prob": r"`prob` must be a number in \[0, 1\].*received ",
        "pairing": r"`pairing` must be one of \['knn', 'label_kernel', "
        r"'random', 'same_class', 'same_class_knn'\]; received ",
        "mix_at": r"`mix_at` must be 'input', 'latent' or a list of "
        r"MixupLayer names.*received ",
        "latent_dim": r"`latent_dim` must be an int >= 1.*received ",
        "start_epoch": r"`start_epoch` must be an int >= 0.*received ",
        "stop_epoch": r"`stop_epoch` must be None or an int > start_epoch",
        "label_bandwidth": r"`label_bandwidth` must be a finite number > 0 "
        r"\(sigma, the width of the label kernel.*received ",
        "clean_loss_weight": r"`clean_loss_weight` must be a finite number "
        r">= 0 \(the weight of the loss on the unmixed batch\); received ",
    }
)


def bad(call, received="", **kwargs):
    return _row(call, kwargs, received)


def bad_alphas(name, call):
    """The five invalid alphas of the issue, for one constructor."""
    values = {
        "0": (0, "0.0"),
        "negative": (-1, "-1.0"),
        "nan": (NAN, "nan"),
        "inf": (INF, "inf"),
        "string": ("0.2", "'0.2' of type str"),
    }
    return {
        f"{name}-alpha-{key}": bad(call, received, alpha=value)
        for key, (value, received) in values.items()
    }


OTHER_APIS = {
    **bad_alphas("MixupLayer", keras_mixup.MixupLayer),
    **bad_alphas("MixupModel", mixup_model),
    **bad_alphas("MixupGAN", mixup_gan),
    **bad_alphas("mix_with", mix_with),
    "MixupLayer-prob-1.5": bad(keras_mixup.MixupLayer, "1.5", prob=1.5),
    "MixupLayer-prob-nan": bad(keras_mixup.MixupLayer, "nan", prob=NAN),
    "MixupLayer-seed-float": bad(keras_mixup.MixupLayer, ".*1.5", seed=1.5),
    "MixupModel-num_classes-1": bad(mixup_model, "1", num_classes=1),
    "MixupModel-num_classes-string": bad(mixup_model, "'3'", num_classes="3"),
    "MixupModel-pairing-unknown": bad(
        mixup_model, "'nearest'", pairing="nearest"
    ),
    "MixupModel-mix_at-unknown": bad(mixup_model, "'middle'", mix_at="middle"),
    "MixupModel-mix_at-missing-layer": BadArgument(
        mixup_model,
        (),
        {"mix_at": ["nope"]},
        ValueError,
        r"`mix_at` names 'nope', but the model has no layer of that name",
    ),
    "MixupModel-prob-negative": bad(mixup_model, "-0.1", prob=-0.1),
    "MixupModel-label_bandwidth-0": bad(mixup_model, "0.0", label_bandwidth=0),
    "MixupLayer-label_bandwidth-inf": bad(
        keras_mixup.MixupLayer, "inf", label_bandwidth=INF
    ),
    "MixupModel-clean_loss_weight-negative": bad(
        mixup_model, "-1.0", clean_loss_weight=-1
    ),
    "MixupModel-clean_loss_weight-nan": bad(
        mixup_model, "nan", clean_loss_weight=NAN
    ),
    "MixupModel-clean_loss_weight-string": bad(
        mixup_model, "'1' of type str", clean_loss_weight="1"
    ),
    "MixupModel-prob-above-1": bad(mixup_model, "1.1", prob=1.1),
    "MixupModel-model-string": BadArgument(
        keras_mixup.MixupModel,
        ("x",),
        {},
        ValueError,
        r"`model` must be a keras.Model.*received 'x' of type str",
    ),
    "MixupGAN-latent_dim-0": bad(mixup_gan, "0", latent_dim=0),
    "MixupGAN-latent_dim-float": bad(mixup_gan, "2.0", latent_dim=2.0),
    "MixupGAN-generator-string": BadArgument(
        keras_mixup.MixupGAN,
        ("g", None, 2),
        {},
        ValueError,
        r"`generator` must be a Keras model or layer; received 'g'",
    ),
    "MixupSchedule-start_epoch-negative": bad(
        mixup_schedule, "-1", start_epoch=-1
    ),
    "MixupSchedule-start_epoch-float": bad(
        mixup_schedule, "1.0", start_epoch=1.0
    ),
    "MixupSchedule-stop_epoch-before-start": BadArgument(
        mixup_schedule,
        (),
        {"start_epoch": 3, "stop_epoch": 2},
        ValueError,
        MATCH["stop_epoch"] + r" = 3.*received 2",
    ),
    "MixupSchedule-alpha-0": BadArgument(
        mixup_schedule,
        (),
        {"alpha": {0: 0.0}},
        ValueError,
        r"`alpha\[0\]` must be a finite number > 0.*received 0.0",
    ),
    "MixupSchedule-alpha-nan": BadArgument(
        mixup_schedule,
        (),
        {"alpha": {2: NAN}},
        ValueError,
        r"`alpha\[2\]` must be a finite number > 0.*received nan",
    ),
    "MixupSchedule-alpha-string": BadArgument(
        mixup_schedule,
        (),
        {"alpha": "0.2"},
        ValueError,
        r"`alpha` must be None.*received '0.2' of type str",
    ),
    "MixupSchedule-target-string": BadArgument(
        keras_mixup.MixupSchedule,
        ("x",),
        {},
        ValueError,
        r"`target` must be a mixing object.*received 'x' of type str",
    ),
    "mix_with-dataset-array": BadArgument(
        keras_mixup.mix_with,
        (np.eye(2), tf.data.Dataset.range(2)),
        {},
        ValueError,
        r"`dataset` must be a tf.data.Dataset; received array",
    ),
    "mix_with-pairing-unknown": bad(mix_with, "'nearest'", pairing="nearest"),
    "mix_with-prob-2": bad(mix_with, "2", prob=2),
    "mix_with-label_bandwidth-negative": bad(
        mix_with, "-2.0", label_bandwidth=-2
    ),
}

# MixupModel's mix points, mix_with's datasets, Mixup.mix's partner batch
# and MixupGAN.compile: each row with its whole message.


def model_with_mix_points():
    import keras

    return keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(4),
            keras_mixup.MixupLayer(name="mix_1"),
            keras.layers.Dense(4),
            keras_mixup.MixupLayer(name="mix_2"),
            keras.layers.Dense(3, name="dense"),
        ]
    )


def mixup_model_of(make_model):
    return lambda **kwargs: keras_mixup.MixupModel(make_model(), **kwargs)


def dense():
    import keras

    return keras.layers.Dense(3)


def mix_with_changed(change_dataset=None, change_partners=None, **kwargs):
    ds, partners = datasets()
    ds = change_dataset(ds) if change_dataset else ds
    partners = change_partners(partners) if change_partners else partners
    return keras_mixup.mix_with(ds, partners, **kwargs)


def mixup_mix(*args, **kwargs):
    return keras_mixup.Mixup(alpha=1.0).mix(*args, **kwargs)


def gan_compile(**kwargs):
    mixup_gan().compile(**kwargs)


def gan_compile_one_optimizer_twice():
    import keras

    optimizer = keras.optimizers.Adam()
    gan_compile(d_optimizer=optimizer, g_optimizer=optimizer)


def row(call, match, *args, **kwargs):
    return BadArgument(call, args, kwargs, ValueError, match)


NAMES = r" MixupLayers in the model: \['mix_1', 'mix_2'\]\."
MIX_AT = (
    r"`mix_at` must be 'input', 'latent' or a (non-empty )?list of "
    r"MixupLayer names \(optionally with 'input'\); received "
)
ELEMENTS = r"float32\[None, 4\]"
X = np.zeros((4, 3), "float32")
MORE_ROWS = {
    "MixupModel-model-layer": row(
        mixup_model_of(dense),
        r"`model` must be a keras.Model \(Sequential, functional or "
        r"subclassed\); received <Dense .* of type Dense",
    ),
    "MixupModel-model-function": row(
        mixup_model_of(lambda: lambda x: x),
        r"`model` must be a keras.Model .*received <function .* of type "
        r"function",
    ),
    "MixupModel-mix_at-unknown-string": row(
        mixup_model_of(model_with_mix_points),
        MIX_AT + rf"'hidden'\.{NAMES}",
        mix_at="hidden",
    ),
    "MixupModel-mix_at-unknown-layer": row(
        mixup_model_of(model_with_mix_points),
        r"`mix_at` names 'mix_3', but the model has no layer of that "
        rf"name\.{NAMES}",
        mix_at=["mix_3"],
    ),
    "MixupModel-mix_at-not-a-mixup-layer": row(
        mixup_model_of(model_with_mix_points),
        r"`mix_at` names 'dense', a Dense layer; only MixupLayers \(and "
        rf"'input'\) are mix points\.{NAMES}",
        mix_at=["dense"],
    ),
    "MixupModel-mix_at-empty": row(
        mixup_model_of(model_with_mix_points),
        MIX_AT + rf"\[\]\.{NAMES}",
        mix_at=[],
    ),
    "MixupModel-mix_at-twice": row(
        mixup_model_of(model_with_mix_points),
        r"`mix_at` names a point twice: \['mix_1', 'mix_1'\]",
        mix_at=["mix_1", "mix_1"],
    ),
    "MixupModel-mix_at-not-a-name": row(
        mixup_model_of(model_with_mix_points),
        MIX_AT + rf"\[3\]\.{NAMES}",
        mix_at=[3],
    ),
    "MixupModel-latent-without-mixup-layers": row(
        mixup_model,
        r"`mix_at='latent'` mixes at the input or at a MixupLayer inside the "
        r"model, but the model has no MixupLayer: add "
        r"keras_mixup.MixupLayer\(\)",
        mix_at="latent",
    ),
    "mix_with-partner-shape": row(
        mix_with_changed,
        r"`partner_dataset` inputs must match `dataset`'s in dtype and "
        rf"per-example shape; received float32\[None, 3\] for {ELEMENTS}",
        change_partners=lambda p: p.map(lambda x: x[:, :3]),
    ),
    "mix_with-partner-dtype": row(
        mix_with_changed,
        r"`partner_dataset` inputs must match .*received "
        rf"float64\[None, 4\] for {ELEMENTS}",
        change_partners=lambda p: p.map(lambda x: tf.cast(x, tf.float64)),
    ),
    "mix_with-partner-structure": row(
        mix_with_changed,
        r"`partner_dataset` must yield `x`, `\(x,\)`, `\(x, y\)` or "
        r"`\(x, y, sample_weight\)` with `x` structured like `dataset`'s "
        rf"inputs {ELEMENTS}; received elements \{{'image'",
        change_partners=lambda p: p.map(lambda x: {"image": x}),
    ),
    "mix_with-dataset-unlabelled": row(
        mix_with_changed,
        r"`dataset` must yield labelled batches, `\(x, y\)`, "
        r"`\(x, y, sample_weight\)` or a dict `\{'images': x, 'labels': y\}`"
        rf".*; received elements {ELEMENTS}",
        change_dataset=lambda ds: ds.map(lambda x, y: x),
    ),
    "mix_with-mix_labels-unlabelled-partner": row(
        mix_with_changed,
        r"`mix_labels=True` blends labels, but `partner_dataset` yields no "
        rf"labels \(elements {ELEMENTS}\); use the default "
        r"`mix_labels=False`",
        mix_labels=True,
        num_classes=4,
    ),
    "mix_with-same_class-unlabelled-partner": row(
        mix_with_changed,
        r"`pairing='same_class'` needs labels on both sides, but "
        rf"`partner_dataset` yields no labels \(elements {ELEMENTS}\)",
        pairing="same_class",
    ),
    "mix_with-partner-empty": row(
        mix_with_changed,
        r"`partner_dataset` is empty\.",
        change_partners=lambda p: p.take(0),
    ),
    "mix_with-partner-array": row(
        mix_with_changed,
        r"`partner_dataset` must be a tf.data.Dataset; received array",
        change_partners=lambda p: np.zeros((4, 4)),
    ),
    "mix_with-knn_k-0": row(
        mix_with_changed,
        r"`knn_k` must be an int >= 1 \(the number of nearest neighbours a "
        r"partner is drawn from\); received 0\.",
        pairing="knn",
        knn_k=0,
    ),
    "Mixup.mix-partner_x-shape": row(
        mixup_mix,
        r"`partner_x` must have the shape of `x` apart from the batch size; "
        r"received \(2, 4\) for \(4, 3\)\.",
        X,
        partner_x=np.zeros((2, 4), "float32"),
    ),
    "Mixup.mix-partner_x-dtype": row(
        mixup_mix,
        r"`partner_x` must have the dtype of `x`; received int32 for "
        r"float32\.",
        X,
        partner_x=np.zeros((2, 3), "int32"),
    ),
    "Mixup.mix-partner_y-without-partner_x": row(
        mixup_mix,
        r"`partner_y` and `partner_sample_weight` need `partner_x`; "
        r"received partner_x=None\.",
        X,
        partner_y=np.zeros([2]),
    ),
    "Mixup.mix-partner-without-labels": row(
        mixup_mix,
        r"`mix_labels=True` blends labels, so the partner batch needs labels "
        r"too; received partner labels None\.",
        X,
        np.zeros([4], "float32"),
        partner_x=np.zeros((2, 3), "float32"),
    ),
    "MixupGAN.compile-one-optimizer-twice": row(
        gan_compile_one_optimizer_twice,
        "`d_optimizer` and `g_optimizer` must be two different optimizer "
        "instances.*received the same instance twice",
    ),
    "MixupGAN.compile-loss": row(
        gan_compile,
        "MixupGAN.compile takes `d_optimizer` and `g_optimizer` and builds "
        "its own losses; received `loss`",
        d_optimizer="adam",
        g_optimizer="adam",
        loss="mse",
    ),
    "MixupGAN.compile-metrics": row(
        gan_compile,
        "builds its own losses; received `metrics`",
        d_optimizer="adam",
        g_optimizer="adam",
        metrics=[],
    ),
    "MixupGAN.compile-g_optimizer-none": row(
        gan_compile,
        "`g_optimizer` is required; received None",
        d_optimizer="adam",
        g_optimizer=None,
    ),
    "MixupGAN.compile-d_optimizer-unknown": row(
        gan_compile,
        "`d_optimizer` must be a Keras optimizer, its name or its config; "
        "received 'no_such_optimizer'",
        d_optimizer="no_such_optimizer",
        g_optimizer="adam",
    ),
}

BAD_ARGUMENTS = {
    # Mixup(...)
    "Mixup-alpha-0": bad_mixup("0.0", alpha=0),
    "Mixup-alpha-negative": bad_mixup("-0.2", alpha=-0.2),
    "Mixup-alpha-nan": bad_mixup("nan", alpha=NAN),
    "Mixup-alpha-inf": bad_mixup("inf", alpha=INF),
    "Mixup-alpha-string": bad_mixup("'0.2' of type str", alpha="0.2"),
    "Mixup-alpha-none": bad_mixup("None", alpha=None),
    "Mixup-alpha-bool": bad_mixup("True of type bool", alpha=True),
    "Mixup-num_classes-1": bad_mixup("1", num_classes=1),
    "Mixup-num_classes-0": bad_mixup("0", num_classes=0),
    "Mixup-num_classes-float": bad_mixup("3.0", num_classes=3.0),
    "Mixup-num_classes-string": bad_mixup("'3'", num_classes="3"),
    "Mixup-label_smoothing-1": bad_mixup("1.0", label_smoothing=1.0),
    "Mixup-label_smoothing-negative": bad_mixup("-0.1", label_smoothing=-0.1),
    "Mixup-label_smoothing-nan": bad_mixup("nan", label_smoothing=NAN),
    "Mixup-label_smoothing-string": bad_mixup("'0.1'", label_smoothing="0.1"),
    "Mixup-mode-unknown": bad_mixup("'pixel'", mode="pixel"),
    "Mixup-mode-none": bad_mixup("None", mode=None),
    "Mixup-seed-float": bad_mixup(".*1.5", seed=1.5),
    "Mixup-seed-string": bad_mixup(".*'1'", seed="1"),
    "Mixup.for_input_context-int": BadArgument(
        mixup_for_input_context,
        (0,),
        {},
        ValueError,
        r"`input_context` must be the tf.distribute.InputContext",
    ),
    # sample_lambda(...)
    "sample_lambda-alpha-0": bad_sample("0.0", alpha=0),
    "sample_lambda-alpha-negative": bad_sample("-1.0", alpha=-1),
    "sample_lambda-alpha-nan": bad_sample("nan", alpha=NAN),
    "sample_lambda-alpha-inf": bad_sample("inf", alpha=INF),
    "sample_lambda-alpha-string": bad_sample("'0.2'", alpha="0.2"),
    "sample_lambda-alpha-int-tensor": BadArgument(
        sample,
        (),
        {"alpha": tf.constant(1)},
        ValueError,
        r"`alpha` must be a floating-point scalar; received dtype int32",
    ),
    "sample_lambda-alpha-vector": BadArgument(
        sample,
        (),
        {"alpha": tf.constant([0.2, 0.3])},
        ValueError,
        r"`alpha` must be a scalar; received a tensor of shape \(2,\)",
    ),
    "sample_lambda-alpha-variable-negative": BadArgument(
        sample,
        (),
        {"alpha": tf.Variable(-1.0)},
        tf.errors.InvalidArgumentError,
        "`alpha` must be a finite number > 0",
    ),
    "sample_lambda-alpha-variable-nan": BadArgument(
        sample,
        (),
        {"alpha": tf.Variable(NAN)},
        tf.errors.InvalidArgumentError,
        "`alpha` must be a finite number",
    ),
    "sample_lambda-dtype-float16": bad_sample(
        ".*received float16", dtype="float16"
    ),
    "sample_lambda-dtype-bfloat16": bad_sample(
        ".*received bfloat16", dtype="bfloat16"
    ),
    "sample_lambda-dtype-int32": bad_sample(".*received int32", dtype="int32"),
    "sample_lambda-seed-float": bad_sample(
        ".*received dtype float32", seed=1.5
    ),
    "sample_lambda-seed-triple": bad_sample(r".*shape \(3,\)", seed=[1, 2, 3]),
    "sample_lambda-seed-bool": bad_sample(".*received True", seed=True),
    "sample_lambda-shape-negative": bad_sample(r"\[-1\]", shape=[-1]),
    "sample_lambda-shape-float": bad_sample("2.5", shape=2.5),
    "sample_lambda-shape-none": bad_sample(r"\[None\]", shape=[None]),
    # The core's own entry points.
    "SeedSource-seed-float": BadArgument(
        state.SeedSource, (1.5,), {}, ValueError, "`seed` must be an int"
    ),
    "SeedSource-input_pipeline_id-negative": BadArgument(
        state.SeedSource,
        (1,),
        {"input_pipeline_id": -1},
        ValueError,
        r"`input_pipeline_id` must be an int >= 0 or None; received -1",
    ),
    "partner_index-pairing-unknown": BadArgument(
        pairing.partner_index,
        ("nearest", 4, tf.constant([1, 2])),
        {},
        ValueError,
        MATCH["pairing"] + "'nearest'",
    ),
    **OTHER_APIS,
    **MORE_ROWS,
}


@pytest.mark.parametrize("row", BAD_ARGUMENTS.values(), ids=BAD_ARGUMENTS)
def test_bad_argument(row):
    with pytest.raises(row.error, match=row.match):
        row.call(*row.args, **row.kwargs)


class BadBatch(NamedTuple):
    make: Any
    batch: tuple
    error: type
    match: str
    dynamic: Any = None
    #: `(error, match)` in a graph (`tf.function`, `Dataset.map`), where a
    #: value check is an assertion that fails when the graph runs.
    traced: Any = None


def mixup3():
    return keras_mixup.Mixup(alpha=1.0, num_classes=3, seed=0)


def mixup_float_labels():
    return keras_mixup.Mixup(alpha=1.0, seed=0)


def ragged(rows):
    return tf.ragged.constant(rows, dtype=tf.float32)


def sparse(dense):
    return tf.sparse.from_dense(tf.constant(dense, tf.float32))


SAME_SIZE = "same batch size"
IDS = [0, 1]
BAD_BATCHES = {
    "x-y-sizes": BadBatch(
        mixup3,
        (tf.eye(3), tf.constant(IDS)),
        ValueError,
        rf"{SAME_SIZE}.*\[2, 3\]",
        (tf.errors.InvalidArgumentError, SAME_SIZE),
    ),
    "sample_weight-size": BadBatch(
        mixup3,
        (tf.eye(2), tf.constant(IDS), tf.ones([3])),
        ValueError,
        rf"{SAME_SIZE}.*\[2, 3\]",
        (tf.errors.InvalidArgumentError, SAME_SIZE),
    ),
    "x-leaf-sizes": BadBatch(
        mixup3,
        ({"a": tf.eye(2), "b": tf.eye(3)}, tf.constant(IDS)),
        ValueError,
        rf"{SAME_SIZE}.*\[2, 3\]",
        (tf.errors.InvalidArgumentError, SAME_SIZE),
    ),
    "label-too-large": BadBatch(
        mixup3,
        (tf.eye(2), tf.constant([0, 3])),
        ValueError,
        r"^Labels must be in \[0, 3\) \(num_classes=3\); received the "
        r"class id 3\.$",
        traced=(tf.errors.InvalidArgumentError, r"Labels must be in \[0, 3\)"),
    ),
    "label-negative": BadBatch(
        mixup3,
        (tf.eye(2), tf.constant([-1, 0])),
        ValueError,
        r"Labels must be in \[0, 3\).*received the class id -1\.$",
        traced=(tf.errors.InvalidArgumentError, r"Labels must be in \[0, 3\)"),
    ),
    "sample_weight-negative": BadBatch(
        mixup3,
        (tf.eye(2), tf.constant(IDS), tf.constant([1.0, -0.5])),
        ValueError,
        r"^`sample_weight` must hold finite weights >= 0 .*received the "
        r"weight -0\.5\.$",
        traced=(
            tf.errors.InvalidArgumentError,
            r"`sample_weight` must hold finite weights >= 0",
        ),
    ),
    "sample_weight-nan": BadBatch(
        mixup3,
        (tf.eye(2), tf.constant(IDS), tf.constant([NAN, 1.0])),
        ValueError,
        r"`sample_weight` must hold finite weights.*received the weight nan",
        traced=(
            tf.errors.InvalidArgumentError,
            r"`sample_weight` must hold finite weights >= 0",
        ),
    ),
    "sample_weight-inf": BadBatch(
        mixup3,
        (tf.eye(2), tf.constant(IDS), tf.constant([1.0, float("inf")])),
        ValueError,
        r"`sample_weight` must hold finite weights.*received the weight inf",
        traced=(
            tf.errors.InvalidArgumentError,
            r"`sample_weight` must hold finite weights >= 0",
        ),
    ),
    "sample_weight-int-negative": BadBatch(
        mixup3,
        (tf.eye(2), tf.constant(IDS), tf.constant([1, -2])),
        ValueError,
        r"`sample_weight` must hold finite weights.*received the weight -2\.$",
        traced=(
            tf.errors.InvalidArgumentError,
            r"`sample_weight` must hold finite weights >= 0",
        ),
    ),
    "one-hot-label-nan": BadBatch(
        mixup3,
        (tf.eye(2), tf.constant([[1.0, 0.0, 0.0], [NAN, 1.0, 0.0]])),
        ValueError,
        r"^Float labels \(one-hot, soft or continuous targets\) must be "
        r"finite .*received the label nan\.$",
        traced=(tf.errors.InvalidArgumentError, r"Float labels .* finite"),
    ),
    "soft-label-inf": BadBatch(
        mixup_float_labels,
        (tf.eye(2), tf.constant([[0.5, 0.5], [INF, 0.0]])),
        ValueError,
        r"^Float labels .* must be finite .*received the label inf\.$",
        traced=(tf.errors.InvalidArgumentError, r"Float labels .* finite"),
    ),
    "regression-target-nan": BadBatch(
        mixup_float_labels,
        (tf.eye(2), tf.constant([2.5, NAN])),
        ValueError,
        r"^Float labels .* must be finite .*received the label nan\.$",
        traced=(tf.errors.InvalidArgumentError, r"Float labels .* finite"),
    ),
    "int-labels-without-num_classes": BadBatch(
        mixup_float_labels,
        (tf.eye(2), tf.constant(IDS)),
        ValueError,
        r"need `num_classes`.*dtype int32",
    ),
    "int-labels-rank-2": BadBatch(
        mixup3,
        (tf.eye(2), tf.constant([[0, 1], [1, 0]])),
        ValueError,
        r"class ids of shape \[batch\] or \[batch, 1\]; received shape",
    ),
    "x-ragged": BadBatch(
        mixup3,
        (ragged([[1.0], [2.0, 3.0]]), tf.constant(IDS)),
        ValueError,
        r"`x` is a tf.RaggedTensor.*pad it",
    ),
    "x-leaf-ragged": BadBatch(
        mixup3,
        ({"a": tf.eye(2), "b": ragged([[1.0], [2.0, 3.0]])}, tf.constant(IDS)),
        ValueError,
        r"`x\['b'\]` is a tf.RaggedTensor",
    ),
    "y-ragged": BadBatch(
        mixup_float_labels,
        (tf.eye(2), ragged([[0.0], [1.0, 0.0]])),
        ValueError,
        r"`y` is a tf.RaggedTensor",
    ),
    "x-sparse": BadBatch(
        mixup3,
        (sparse(np.eye(2)), tf.constant(IDS)),
        ValueError,
        r"`x` is a tf.SparseTensor.*tf.sparse.to_dense",
    ),
    "sample_weight-sparse": BadBatch(
        mixup3,
        (tf.eye(2), tf.constant(IDS), sparse([1.0, 0.0])),
        ValueError,
        r"`sample_weight` is a tf.SparseTensor",
    ),
    "x-strings": BadBatch(
        mixup3,
        (tf.constant(["a", "b"]), tf.constant(IDS)),
        ValueError,
        r"`x` must hold numbers.*received dtype string",
    ),
    "x-bool": BadBatch(
        mixup3,
        (tf.constant([True, False]), tf.constant(IDS)),
        ValueError,
        r"`x` must hold numbers.*received dtype bool",
    ),
    "x-scalar": BadBatch(
        mixup3,
        (tf.constant(1.0), tf.constant(IDS)),
        ValueError,
        r"`x` must be batch-first with rank >= 1",
    ),
    "x-empty-structure": BadBatch(
        mixup3,
        ({}, tf.constant(IDS)),
        ValueError,
        r"`x` is empty",
    ),
}


def dynamic_spec(value):
    """The value's type spec with an unknown batch size."""
    spec = tf.type_spec_from_value(value)
    if isinstance(spec, tf.TensorSpec) and spec.shape.rank:
        return tf.TensorSpec([None, *spec.shape[1:]], spec.dtype)
    return spec


def run_eager(mixer, batch):
    return mixer(*batch)


def run_function(mixer, batch):
    """A `tf.function` traced with an unknown batch size."""
    signature = tf.nest.map_structure(dynamic_spec, batch)
    return tf.function(mixer, input_signature=list(signature))(*batch)


def run_dataset(mixer, batch):
    return list(tf.data.Dataset.from_tensors(batch).map(mixer))


RUNNERS = {"eager": run_eager, "function": run_function, "map": run_dataset}


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("row", BAD_BATCHES.values(), ids=BAD_BATCHES)
def test_bad_batch(row, runner):
    error, match = row.error, row.match
    if runner == "function" and row.dynamic:
        error, match = row.dynamic
    if runner != "eager" and row.traced:
        error, match = row.traced
    with pytest.raises(error, match=match):
        RUNNERS[runner](row.make(), row.batch)


def test_mix_with_and_the_layer_refuse_nan_labels():
    """A NaN in the labels of either batch of `mix_with` fails the
    pipeline; `MixupLayer`'s dict form raises it eagerly."""
    hot = tf.eye(2)
    nan = tf.constant([[1.0, 0.0], [NAN, 1.0]])
    good = tf.data.Dataset.from_tensors((tf.eye(2), hot))
    bad = tf.data.Dataset.from_tensors((tf.eye(2), nan))
    for ds, partners in ((bad, good), (good, bad)):
        mixed = keras_mixup.mix_with(
            ds, partners, alpha=1.0, seed=0, mix_labels=True
        )
        with pytest.raises(
            tf.errors.InvalidArgumentError, match=r"Float labels .* finite"
        ):
            list(mixed)
    layer = keras_mixup.MixupLayer(alpha=1.0, seed=1)
    with pytest.raises(ValueError, match=r"finite .*received the label nan"):
        layer({"images": tf.eye(2), "labels": nan}, training=True)


# Documented behaviours.


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("mode", ["elem", "batch"])
def test_an_empty_batch_comes_back_empty(runner, mode):
    mixer = keras_mixup.Mixup(alpha=0.2, num_classes=3, mode=mode, seed=0)
    batch = (
        {"image": tf.zeros([0, 4, 4], tf.uint8), "v": tf.zeros([0, 2])},
        tf.zeros([0], tf.int32),
        tf.zeros([0]),
    )
    out = RUNNERS[runner](mixer, batch)
    if runner == "map":
        (out,) = out
    x, y, weight = out
    assert x["image"].shape == (0, 4, 4) and x["image"].dtype == tf.float32
    assert x["v"].shape == (0, 2) and y.shape == (0, 3)
    assert y.dtype == tf.float32 and weight.shape == (0,)


def test_sample_lambda_of_an_empty_shape_is_empty():
    lam = keras_mixup.sample_lambda([0], 0.2, 1)
    assert lam.shape == (0,) and lam.dtype == tf.float32


def test_nan_in_an_input_reaches_only_the_rows_that_mix_it():
    """Example 2 holds a NaN: it shows up exactly in the rows that mix
    example 2 (its own row, and the row whose partner it is), nowhere
    else; the other values are the exact blend."""
    size = 8
    values = np.arange(size * 3, dtype="float32").reshape(size, 3)
    values[2, 1] = np.nan
    for seed in range(3):
        mixer = keras_mixup.Mixup(alpha=1.0, num_classes=size, seed=seed)
        x, y = mixer({"id": tf.eye(size), "v": values}, tf.range(size))
        lam, partner = decode_identity_rows(x["id"], np.arange(size))
        mixes_two = (np.arange(size) == 2) | (partner == 2)
        mixed = x["v"].numpy()
        assert np.isnan(mixed[mixes_two, 1]).all()
        assert np.isfinite(np.delete(mixed, 1, axis=1)).all()
        assert np.isfinite(mixed[~mixes_two]).all()
        expected = values[partner] + lam[:, None] * (values - values[partner])
        np.testing.assert_allclose(
            mixed[~mixes_two], expected[~mixes_two], rtol=1e-6
        )
        assert np.isfinite(y.numpy()).all()


@pytest.mark.parametrize(
    "dtype, big",
    [("float16", 65504.0), ("bfloat16", 1.6e38), ("float32", 1.6e38)],
)
def test_mixing_creates_no_nan_or_inf_from_finite_extremes(dtype, big):
    """Values of opposite signs near the dtype's range (float16), or near
    half of it (the documented limit for the others): x - x[p] would
    overflow a float16 blend; lam 0 and 1 are included."""
    x = tf.cast(tf.constant([[big], [-big], [big], [-big]]), dtype)
    lam = tf.constant([0.0, 1.0, 0.5, 0.25])
    mixed = blending.blend(x, lam, tf.constant([1, 0, 3, 2]))
    assert mixed.dtype == tf.as_dtype(dtype)
    mixed = tf.cast(mixed, tf.float64).numpy().ravel()
    assert np.isfinite(mixed).all(), mixed
    big = float(tf.cast(tf.constant(big, dtype), tf.float64))
    np.testing.assert_allclose(
        mixed, [-big, -big, 0.0, 0.5 * big], rtol=1e-2, atol=big * 1e-2
    )


def test_no_example_lost_duplicated_or_reordered_through_a_pipeline():
    """100 identity rows, batches of 16 (the last of 4), a parallel map:
    every row of every batch holds its own example at its own position
    with weight lam >= 0 and one partner of the same batch, the partners
    of a batch form a permutation, and every example comes out once."""
    size, batch = 100, 16
    mixer = keras_mixup.Mixup(alpha=1.0, num_classes=size, seed=3)
    ds = tf.data.Dataset.from_tensor_slices(
        (np.eye(size, dtype="float32"), np.arange(size))
    )
    ds = ds.batch(batch).map(mixer, num_parallel_calls=tf.data.AUTOTUNE)
    seen = []
    for step, (x, y) in enumerate(ds):
        ids = np.arange(step * batch, min((step + 1) * batch, size))
        lam, _ = decode_identity_rows(x, ids)
        np.testing.assert_allclose(y, x, atol=1e-6)
        # alpha = 1: lam is never exactly 0, so each own example shows.
        assert (lam > 0).all()
        seen.extend(ids)
    assert step == 6 and seen == list(range(size))


def latent_model(size):
    import keras

    inputs = keras.Input((size,))
    hidden = keras_mixup.MixupLayer(name="mix")(inputs)
    outputs = keras.layers.Dense(size)(hidden)
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("mix_at", ["input", "latent"])
def test_no_example_lost_duplicated_or_reordered_through_mixup_model(mix_at):
    """`MixupModel.mix` in a `tf.function`: the labels (and in "input"
    mode the inputs) of every batch position hold that position's own
    example and one partner of the batch; in latent modes the inputs come
    back untouched unless the step picked the input, and the plan carries
    the labels' lam and partners to the layer."""
    size = 12
    model = keras_mixup.MixupModel(
        latent_model(size), alpha=1.0, num_classes=size, mix_at=mix_at, seed=4
    )
    ids = np.random.default_rng(0).permutation(size)
    x = tf.constant(np.eye(size, dtype="float32")[ids])
    weight = tf.constant(ids, tf.float32)

    @tf.function
    def mix(x, y, weight):
        x, y, weight, plan = model.mix(x, y, weight)
        if plan.lam is None:  # "input": nothing left for the layers
            return x, y, weight, tf.ones([size]), tf.range(size)
        return x, y, weight, plan.lam, plan.partner_index

    for _ in range(3):
        mixed_x, y, mixed_weight, lam, plan_partner = mix(
            x, tf.constant(ids), weight
        )
        label_lam, partner = decode_identity_rows(y, ids)
        expected_weight = ids[partner] + label_lam * (ids - ids[partner])
        np.testing.assert_allclose(mixed_weight, expected_weight, rtol=1e-5)
        if mix_at == "input":
            np.testing.assert_allclose(mixed_x, y, atol=1e-6)
        else:
            # A row paired with itself reads back as lam 1.
            moved = np.asarray(plan_partner) != np.arange(size)
            np.testing.assert_array_equal(plan_partner, partner)
            np.testing.assert_allclose(
                np.asarray(lam)[moved], label_lam[moved], atol=1e-6
            )
            picked_input = not np.array_equal(mixed_x, x)
            if picked_input:
                np.testing.assert_allclose(mixed_x, y, atol=1e-6)


def test_no_example_lost_duplicated_or_reordered_through_mixup_layer():
    """`MixupLayer` traced with `training=True`, on a tensor (inputs only)
    and on the dict form (inputs and float labels mixed alike)."""
    size = 12
    layer = keras_mixup.MixupLayer(alpha=1.0, seed=5)
    ids = np.random.default_rng(1).permutation(size)
    x = tf.constant(np.eye(size, dtype="float32")[ids])
    call = tf.function(lambda data: layer(data, training=True))
    for _ in range(3):
        decode_identity_rows(call(x), ids)
        mixed = call({"inputs": x, "labels": x * 2.0})
        decode_identity_rows(mixed["inputs"], ids)
        np.testing.assert_allclose(
            mixed["labels"], mixed["inputs"] * 2.0, rtol=1e-6
        )
