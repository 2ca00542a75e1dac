"""Tests for `MixupSchedule` and `prob`: what the model receives, epoch by
epoch, while `fit` runs with the callback."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import Recorder, decode_identity_rows, mixed_lams
from scipy import stats

import keras_mixup
from keras_mixup import backend, draws, pairing, state

N, B, D = 64, 16, 64  # examples, batch size, input size (identity rows)
IDENTITY = np.eye(N, D, dtype="float32")
LABELS = np.arange(N) % 4


class Log:
    """What a `Recorder` saw, in order, with epoch marks in between."""

    def __init__(self):
        self.entries = []

    def epochs(self):
        """The recorded batches, as a list per epoch."""
        batches = []
        for entry in self.entries:
            if isinstance(entry, tuple):
                batches.append([])
            else:
                batches[-1].append(entry)
        return batches


def training_recorder(log):
    """A `Recorder` of the batches seen while training, into `log`."""
    return Recorder(log.entries, training_only=True)


class Marks(keras.callbacks.Callback):
    """Marks epoch starts in the log, and counts the recorder's traces at
    every epoch end."""

    def __init__(self, log, recorder):
        super().__init__()
        self._log = log
        self._recorder = recorder
        self.traces = []

    def on_epoch_begin(self, epoch, logs=None):
        self._log.entries.append(("epoch", epoch))

    def on_epoch_end(self, epoch, logs=None):
        self.traces.append(self._recorder.traces)


def dense_head(log, first=()):
    recorder = training_recorder(log)
    model = keras.Sequential(
        [
            keras.Input((D,)),
            *first,
            recorder,
            keras.layers.Dense(4, activation="softmax"),
        ]
    )
    return model, recorder


def rows_of(batches):
    """The example ids of each recorded batch of an epoch, in order."""
    return [
        np.arange(b * B, b * B + len(batch)) for b, batch in enumerate(batches)
    ]


def lams(batches):
    """lam of every identity row mixed with another row in an epoch."""
    return np.concatenate(
        [
            mixed_lams(batch, ids)
            for batch, ids in zip(batches, rows_of(batches), strict=True)
        ]
    )


def unmixed(batches):
    """How many recorded rows show no partner (their own identity row)."""
    count = 0
    for batch, ids in zip(batches, rows_of(batches), strict=True):
        _, partner = decode_identity_rows(batch, ids)
        count += int(np.sum(partner == np.arange(len(ids))))
    return count


# --- fit: what the model receives, epoch by epoch ---------------------------

# Epoch 0: off; 1: alpha 0.3; 2: alpha 5; 3: off again.
SCHEDULE = {"start_epoch": 1, "stop_epoch": 3, "alpha": {1: 0.3, 2: 5.0}}


def _fit_tf_data(log):
    mixup = keras_mixup.Mixup(alpha=1.0, num_classes=4, seed=0)
    maps = []

    def mix(x, y):
        maps.append(1)  # runs when the map function is traced
        return mixup(x, y)

    ds = (
        tf.data.Dataset.from_tensor_slices((IDENTITY, LABELS))
        .batch(B)
        .map(mix, num_parallel_calls=2)
        .prefetch(2)
    )
    model, recorder = dense_head(log)
    model.compile("sgd", "categorical_crossentropy", jit_compile=False)
    return model, recorder, mixup, ds, None, maps, "mixup"


def _fit_layer(log):
    layer = keras_mixup.MixupLayer(alpha=1.0, seed=0)
    model, recorder = dense_head(log, first=[layer])
    model.compile("sgd", "sparse_categorical_crossentropy", jit_compile=False)
    return model, recorder, layer, IDENTITY, LABELS, None, "inputs_only"


def _fit_model(log):
    backbone, recorder = dense_head(log)
    model = keras_mixup.MixupModel(backbone, alpha=1.0, num_classes=4, seed=0)
    model.compile("sgd", "categorical_crossentropy", jit_compile=False)
    return model, recorder, model, IDENTITY, LABELS, None, "mixup"


@pytest.mark.parametrize("build", [_fit_tf_data, _fit_layer, _fit_model])
def test_schedule_switches_and_changes_alpha_in_what_the_model_receives(
    build,
):
    log = Log()
    model, recorder, target, x, y, maps, form = build(log)
    marks = Marks(log, recorder)
    schedule = keras_mixup.MixupSchedule(target, **SCHEDULE)
    batching = {} if isinstance(x, tf.data.Dataset) else {"batch_size": B}
    model.fit(
        x,
        y,
        epochs=4,
        shuffle=False,
        verbose=0,
        callbacks=[marks, schedule],
        **batching,
    )
    epochs = log.epochs()
    assert [len(batches) for batches in epochs] == [4, 4, 4, 4]
    # Off: the model receives the identity rows bit for bit.
    for epoch in (0, 3):
        np.testing.assert_array_equal(np.concatenate(epochs[epoch]), IDENTITY)
    # On: mixed, apart from the odd example that is its own partner.
    for epoch in (1, 2):
        assert unmixed(epochs[epoch]) <= 10, epoch
    # lam follows the scheduled alpha: Beta(alpha, alpha), or
    # Beta(alpha + 1, alpha) for the inputs-only layer.
    for epoch, alpha in ((1, 0.3), (2, 5.0)):
        values = lams(epochs[epoch])
        assert len(values) >= 50
        shift = 1.0 if form == "inputs_only" else 0.0
        cdf = stats.beta(alpha + shift, alpha).cdf
        assert stats.kstest(values, cdf).pvalue > 1e-3, (epoch, alpha)
        other = 5.0 if alpha == 0.3 else 0.3
        wrong = stats.beta(other + shift, other).cdf
        assert stats.kstest(values, wrong).pvalue < 1e-6, (epoch, alpha)
    # No retracing: one training trace, in the first epoch; the map
    # function was traced once, when the pipeline was built.
    assert marks.traces == [1, 1, 1, 1]
    if maps is not None:
        assert len(maps) == 1


def test_tf_data_boundaries_lag_by_the_prefetched_batches_with_steps():
    # With `steps_per_epoch` on a repeated dataset, Keras keeps one
    # iterator across epochs: batches the pipeline prepared before an epoch
    # started keep the previous setting (documented). With `prefetch(1)`,
    # at most 2 (the buffered one and the one being mapped).
    log = Log()
    mixup = keras_mixup.Mixup(alpha=1.0, num_classes=4, seed=0)
    ds = (
        tf.data.Dataset.from_tensor_slices((IDENTITY, LABELS))
        .batch(B)
        .repeat()
        .map(mixup)
        .prefetch(1)
    )
    model, recorder = dense_head(log)
    model.compile("sgd", "categorical_crossentropy", jit_compile=False)
    schedule = keras_mixup.MixupSchedule(mixup, start_epoch=1)
    model.fit(
        ds,
        epochs=2,
        steps_per_epoch=4,
        shuffle=False,
        verbose=0,
        callbacks=[Marks(log, recorder), schedule],
    )
    first, second = (
        [
            np.array_equal(batch, IDENTITY[b * B : (b + 1) * B])
            for b, batch in enumerate(batches)
        ]
        for batches in log.epochs()
    )
    assert all(first), first  # off: the iterator starts in epoch 0
    is_plain = second
    lag = is_plain.index(False)
    assert lag <= 2 and not any(is_plain[lag:]), is_plain


def test_gan_steps_are_plain_while_off_and_mixed_while_on():
    # The generator outputs 0 and does not learn: the discriminator's
    # batch is `lam * real` when mixed, `[real; 0]` when plain.
    log = Log()
    recorder = training_recorder(log)
    generator = keras.Sequential(
        [keras.Input((2,)), keras.layers.Dense(2, kernel_initializer="zeros")]
    )
    discriminator = keras.Sequential(
        [keras.Input((2,)), recorder, keras.layers.Dense(1)]
    )
    gan = keras_mixup.MixupGAN(
        generator, discriminator, latent_dim=2, alpha=0.2, seed=0
    )
    gan.compile(
        d_optimizer=keras.optimizers.SGD(0.01),
        g_optimizer=keras.optimizers.SGD(0.0),
        jit_compile=False,
    )
    real = np.random.default_rng(0).standard_normal((48, 2)).astype("f")
    marks = Marks(log, recorder)
    schedule = keras_mixup.MixupSchedule(
        gan, start_epoch=1, stop_epoch=2, alpha={1: 2.0}
    )
    gan.fit(
        real,
        batch_size=B,
        epochs=3,
        shuffle=False,
        verbose=0,
        callbacks=[marks, schedule],
    )
    for epoch, batches in enumerate(log.epochs()):
        # Each step: the discriminator step's batch and the generator
        # step's (generated samples: zeros), in either order.
        assert len(batches) == 6
        for step in range(3):
            pair = batches[2 * step : 2 * step + 2]
            g_first = pair[0].shape == (B, 2) and not pair[0].any()
            g_inputs, d_inputs = pair if g_first else pair[::-1]
            np.testing.assert_array_equal(g_inputs, np.zeros((B, 2)))
            batch = real[step * B : (step + 1) * B]
            if epoch == 1:  # mixed: real i blended with fake i = 0
                assert d_inputs.shape == (B, 2)
                lam = d_inputs[:, 0] / batch[:, 0]
                np.testing.assert_allclose(
                    d_inputs, lam[:, None] * batch, rtol=1e-5, atol=1e-6
                )
                assert np.all((lam >= 0) & (lam <= 1)) and np.std(lam) > 0.05
            else:  # plain: the real batch, then the generated one
                np.testing.assert_array_equal(
                    d_inputs, np.concatenate([batch, np.zeros((B, 2))])
                )
    assert marks.traces[1:] == marks.traces[:-1]  # traced once
    assert float(gan.mixing_state.alpha) == 2.0
    assert not bool(gan.mixing_state.active)


# --- the schedule itself ----------------------------------------------------


def test_active_epochs_and_piecewise_constant_alpha():
    mixup = keras_mixup.Mixup(alpha=0.2)
    layer = keras_mixup.MixupLayer(alpha=0.7)
    schedule = keras_mixup.MixupSchedule(
        [mixup, layer], start_epoch=2, stop_epoch=5, alpha={3: 0.5, 6: 1.0}
    )
    seen = []
    for epoch in range(8):
        schedule.on_epoch_begin(epoch)
        seen.append(
            [
                (
                    bool(obj.mixing_state.active),
                    round(float(obj.mixing_state.alpha), 6),
                )
                for obj in (mixup, layer)
            ]
        )
    # Before the first key: each object's constructor alpha.
    assert seen == [
        [(False, 0.2), (False, 0.7)],
        [(False, 0.2), (False, 0.7)],
        [(True, 0.2), (True, 0.7)],
        [(True, 0.5), (True, 0.5)],
        [(True, 0.5), (True, 0.5)],
        [(False, 0.5), (False, 0.5)],
        [(False, 1.0), (False, 1.0)],
        [(False, 1.0), (False, 1.0)],
    ]


def test_callable_alpha_and_alpha_none_leaves_alpha_alone():
    mixup = keras_mixup.Mixup(alpha=0.2)
    keras_mixup.MixupSchedule(
        mixup, alpha=lambda e: 0.1 * (e + 1)
    ).on_epoch_begin(3)
    assert float(mixup.mixing_state.alpha) == np.float32(0.4)
    keras_mixup.MixupSchedule(mixup, start_epoch=1).on_epoch_begin(0)
    assert float(mixup.mixing_state.alpha) == np.float32(0.4)
    assert not bool(mixup.mixing_state.active)


def test_targets_share_one_state_through_their_mixup():
    layer = keras_mixup.MixupLayer()
    schedule = keras_mixup.MixupSchedule([layer, layer], start_epoch=1)
    assert schedule.states == [layer.mixing_state]
    backbone = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model = keras_mixup.MixupModel(backbone)
    assert model.mixing_state is model.engine.state


def test_alpha_change_needs_no_retrace_in_a_function():
    mixup = keras_mixup.Mixup(alpha=0.1, seed=0)
    traces = []

    @tf.function
    def draw():
        traces.append(1)
        return mixup.draw(4000)[0]

    low = draw().numpy()
    keras_mixup.MixupSchedule(mixup, alpha={0: 10.0}).on_epoch_begin(0)
    high = draw().numpy()
    assert len(traces) == 1
    # Beta(0.1, 0.1) piles up near 0 and 1; Beta(10, 10) near 0.5.
    assert np.mean(np.abs(low - 0.5) > 0.4) > 0.5
    assert np.mean(np.abs(high - 0.5) > 0.4) < 0.01


# --- switched off: exactly unmixed ------------------------------------------


def test_off_returns_inputs_exactly_and_labels_only_encoded():
    mixup = keras_mixup.Mixup(
        alpha=1.0, num_classes=3, label_smoothing=0.1, seed=0
    )
    mixup.mixing_state.set(active=False)
    x = {"a": np.random.rand(8, 2, 2).astype("f"), "b": np.arange(8)}
    y = np.arange(8) % 3
    weights = np.linspace(0.1, 0.8, 8).astype("f")
    mixed_x, mixed_y, mixed_w = mixup(x, y, weights)
    np.testing.assert_array_equal(mixed_x["a"], x["a"])
    np.testing.assert_array_equal(mixed_x["b"], x["b"].astype("float32"))
    np.testing.assert_allclose(mixed_y, np.eye(3)[y] * 0.9 + 0.1 / 3, rtol=1e-6)
    np.testing.assert_array_equal(mixed_w, weights)
    lam, partner_index = mixup.draw(8)
    np.testing.assert_array_equal(lam, np.ones(8))
    np.testing.assert_array_equal(partner_index, np.arange(8))


def test_off_in_batch_mode_with_partners_and_in_latent_model():
    mixup = keras_mixup.Mixup(alpha=1.0, mode="batch", mix_labels=False)
    mixup.mixing_state.set(active=False)
    x = np.random.rand(6, 3).astype("f")
    partner = np.random.rand(4, 3).astype("f")
    mixed, _, _ = mixup.mix(x, np.arange(6), partner_x=partner)
    np.testing.assert_array_equal(mixed, x)
    backbone = keras.Sequential(
        [
            keras.Input((3,)),
            keras_mixup.MixupLayer(name="mid"),
            keras.layers.Dense(2),
        ]
    )
    model = keras_mixup.MixupModel(
        backbone, num_classes=2, mix_at="latent", seed=0
    )
    model.mixing_state.set(active=False)
    mixed_x, mixed_y, _, plan = model.mix(x, np.arange(6) % 2)
    np.testing.assert_array_equal(mixed_x, x)
    np.testing.assert_array_equal(mixed_y, np.eye(2)[np.arange(6) % 2])
    np.testing.assert_array_equal(plan.lam, np.ones(6))
    np.testing.assert_array_equal(plan.partner_index, np.arange(6))


def test_prob_1_and_active_draws_as_before():
    # The draws of a batch are unchanged by the apply decision: its seed is
    # the third of a 3-way split, whose first two are the 2-way split's.
    for mode in ("elem", "batch"):
        mixup = keras_mixup.Mixup(alpha=0.4, mode=mode, seed=5)
        reference = state.SeedSource(5)
        for _ in range(3):
            lam, partner_index = mixup.draw(16)
            lam_seed, partner_seed = backend.split(reference.next_seed())
            shape = [16] if mode == "elem" else []
            np.testing.assert_array_equal(
                lam, draws.sample_lambda(shape, 0.4, lam_seed)
            )
            np.testing.assert_array_equal(
                partner_index,
                pairing.partner_index("random", 16, partner_seed),
            )


# --- prob -------------------------------------------------------------------


def _count_unmixed(fn, batches=300, size=8):
    """Maps `fn(x, y) -> (x, y)` over `batches` identity batches and counts
    those that come back exactly unmixed (their labels one-hot)."""
    x, y = tf.eye(size), tf.range(size)

    def check(x, y):
        mixed_x, mixed_y = fn(x, y)
        one_hot = tf.one_hot(y, size)
        return (
            tf.reduce_all(mixed_x == x),
            tf.reduce_all(tf.cast(mixed_y, one_hot.dtype) == one_hot),
        )

    ds = tf.data.Dataset.from_tensors((x, y)).repeat(batches).map(check)
    same_x, same_y = (t.numpy() for t in next(iter(ds.batch(batches))))
    assert np.all(same_y[same_x])
    return int(same_x.sum())


def test_prob_holds_statistically_for_mixup():
    mixup = keras_mixup.Mixup(alpha=1.0, num_classes=8, prob=0.3, seed=1)
    # A mixed batch of 8 comes back unchanged only for the identity
    # permutation (1 in 40320).
    count = _count_unmixed(mixup)
    assert stats.binomtest(count, 300, 0.7).pvalue > 1e-3, count


def test_prob_for_mixup_layer_and_model():
    layer = keras_mixup.MixupLayer(alpha=1.0, prob=0.5, seed=2)
    count = _count_unmixed(
        lambda x, y: (layer(x, training=True), tf.one_hot(y, 8)), 200
    )
    assert stats.binomtest(count, 200, 0.5).pvalue > 1e-3, count
    backbone = keras.Sequential([keras.Input((8,)), keras.layers.Dense(8)])
    model = keras_mixup.MixupModel(
        backbone, alpha=1.0, num_classes=8, prob=0.5, seed=3
    )
    count = _count_unmixed(lambda x, y: model.mix(x, y)[:2], 200)
    assert stats.binomtest(count, 200, 0.5).pvalue > 1e-3, count
    for prob, expected in ((0.0, 50), (1.0, 0)):
        layer = keras_mixup.MixupLayer(alpha=1.0, prob=prob, seed=2)
        count = _count_unmixed(
            lambda x, y, layer=layer: (
                layer(x, training=True),
                tf.one_hot(y, 8),
            ),
            50,
        )
        assert count == expected


def test_prob_zero_with_mix_with():
    labelled = tf.data.Dataset.from_tensor_slices(
        (np.random.rand(8, 3).astype("f"), np.arange(8))
    ).batch(4)
    partners = tf.data.Dataset.from_tensor_slices(
        np.random.rand(8, 3).astype("f")
    ).batch(4)
    ds = keras_mixup.mix_with(labelled, partners, prob=0.0, seed=0)
    for (x, _), (mixed, _) in zip(labelled, ds, strict=True):
        np.testing.assert_array_equal(mixed, x)


# --- saving -----------------------------------------------------------------


def test_prob_survives_save_and_load_schedule_state_does_not(tmp_path):
    backbone = keras.Sequential(
        [
            keras.Input((4,)),
            keras_mixup.MixupLayer(alpha=0.3, prob=0.25, name="mid"),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model = keras_mixup.MixupModel(
        keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]),
        alpha=0.4,
        num_classes=2,
        prob=0.75,
        seed=1,
    )
    model.compile("sgd", "categorical_crossentropy")
    model(np.zeros((1, 4), "float32"))  # build
    schedule = keras_mixup.MixupSchedule(
        [model, backbone.get_layer("mid")], stop_epoch=1, alpha={0: 2.0}
    )
    schedule.on_epoch_begin(1)  # off, alpha 2
    model.save(tmp_path / "model.keras")
    backbone.save(tmp_path / "backbone.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    layer = keras.saving.load_model(tmp_path / "backbone.keras").get_layer(
        "mid"
    )
    assert loaded.get_config()["prob"] == 0.75 and loaded.prob == 0.75
    assert layer.get_config()["prob"] == 0.25
    assert loaded.mixing_state.prob == 0.75 and layer.mixing_state.prob == 0.25
    # The schedule's state is set per epoch by the callback, not saved.
    for obj, alpha in ((loaded, 0.4), (layer, 0.3)):
        assert bool(obj.mixing_state.active)
        assert float(obj.mixing_state.alpha) == np.float32(alpha)
    config = keras_mixup.Mixup(prob=0.5).get_config()
    assert config["prob"] == 0.5
    assert keras_mixup.Mixup.from_config(config).mixing_state.prob == 0.5


# --- bad input --------------------------------------------------------------


@pytest.mark.parametrize("prob", [-0.1, 1.5, float("nan"), "0.5", True, None])
@pytest.mark.parametrize(
    "make",
    [
        lambda prob: keras_mixup.Mixup(prob=prob),
        lambda prob: keras_mixup.MixupLayer(prob=prob),
        lambda prob: keras_mixup.MixupModel(
            keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]),
            prob=prob,
        ),
    ],
    ids=["Mixup", "MixupLayer", "MixupModel"],
)
def test_rejects_bad_prob(make, prob):
    with pytest.raises(ValueError, match=r"`prob` must be a number in \[0, 1"):
        make(prob)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"start_epoch": -1}, "`start_epoch` must be an int >= 0"),
        ({"start_epoch": 1.0}, "`start_epoch` must be an int >= 0"),
        ({"start_epoch": True}, "`start_epoch` must be an int >= 0"),
        ({"start_epoch": "2"}, "`start_epoch` must be an int >= 0"),
        ({"start_epoch": 3, "stop_epoch": 3}, "`stop_epoch` must be None or"),
        ({"start_epoch": 3, "stop_epoch": 1}, "received 1"),
        ({"stop_epoch": 0}, r"an int > start_epoch = 0"),
        ({"stop_epoch": 2.0}, "`stop_epoch` must be None or"),
        ({"alpha": 0.2}, "`alpha` must be None .* a callable"),
        ({"alpha": [0.2]}, "`alpha` must be None .* a callable"),
        ({"alpha": {}}, "non-empty dict"),
        ({"alpha": {0: 0.0}}, r"`alpha\[0\]` must be a finite number > 0"),
        ({"alpha": {2: -1}}, r"`alpha\[2\]` must be a finite number > 0"),
        ({"alpha": {0: float("nan")}}, r"`alpha\[0\]` must be a finite"),
        ({"alpha": {0: "0.2"}}, r"`alpha\[0\]` must be a finite"),
        ({"alpha": {-1: 0.2}}, "keys of an `alpha` dict must be epochs"),
        ({"alpha": {"1": 0.2}}, "keys of an `alpha` dict must be epochs"),
        ({"alpha": {1.5: 0.2}}, "keys of an `alpha` dict must be epochs"),
    ],
)
def test_rejects_bad_schedule(kwargs, match):
    with pytest.raises(ValueError, match=match):
        keras_mixup.MixupSchedule(keras_mixup.Mixup(), **kwargs)


@pytest.mark.parametrize("value", [0, -1.0, float("inf"), None, "1"])
def test_callable_alpha_is_checked_when_set(value):
    mixup = keras_mixup.Mixup(alpha=0.2)
    schedule = keras_mixup.MixupSchedule(mixup, alpha=lambda epoch: value)
    with pytest.raises(ValueError, match=r"`alpha\(4\)` must be a finite"):
        schedule.on_epoch_begin(4)
    assert float(mixup.mixing_state.alpha) == np.float32(0.2)


def _plain_model():
    return keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])


@pytest.mark.parametrize(
    "target, match",
    [
        (lambda: None, "`target` must be a mixing object .* received None"),
        (lambda: 0.2, "`target` must be a mixing object"),
        (lambda: [], "received an empty list"),
        (
            lambda: [keras_mixup.Mixup(), "mixup"],
            r"`target\[1\]` must be a mixing object .* received 'mixup'",
        ),
        (_plain_model, r"pass them: `\[layer for layer in model.layers"),
        (lambda: keras.layers.Dense(2), "of type Dense"),
        (
            lambda: keras_mixup.MixupGAN(
                _plain_model(), _plain_model(), latent_dim=2, alpha=None
            ),
            "never mixes",
        ),
    ],
    ids=["None", "float", "empty", "list", "model", "layer", "plain_gan"],
)
def test_rejects_targets_that_do_not_mix(target, match):
    target = target()
    with pytest.raises(ValueError, match=match):
        keras_mixup.MixupSchedule(target)


def test_mixing_state_set_checks_its_values():
    state = keras_mixup.Mixup().mixing_state
    with pytest.raises(ValueError, match="`active` must be True or False"):
        state.set(active=1)
    with pytest.raises(ValueError, match="`alpha` must be a finite number"):
        state.set(alpha=0)
    state.set(active=False, alpha=3.0)
    state.reset()
    assert bool(state.active) and float(state.alpha) == np.float32(0.2)
