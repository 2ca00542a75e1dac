"""Distributed-training scenarios, run in their own processes.

TensorFlow fixes its devices when it first initialises them, so scenarios
that need two logical CPU devices (`MirroredStrategy`) or a `TF_CONFIG`
cluster (`MultiWorkerMirroredStrategy`) cannot run inside the pytest
process. `distributed_test.py` starts this file as a script:

    python distributed_scenarios.py mirrored OUT.pkl
    python distributed_scenarios.py worker OUT.pkl      # with TF_CONFIG set

`mirrored` runs every function registered in `MIRRORED` under a
`MirroredStrategy` over two logical CPU devices; `worker` runs
`multiworker_worker`, one worker of a `MultiWorkerMirroredStrategy`. Each
writes a pickled dict of plain numpy results; the assertions live in the
tests. A new API gets a scenario by adding a function to `MIRRORED` and a
test reading its result.
"""

import os
import pickle
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

#: Identity-row data: example i is row i of an identity matrix, with label
#: i % NUM_CLASSES, so every mixed row shows its lam and its partner.
NUM_EXAMPLES = 64
NUM_CLASSES = 4
GLOBAL_BATCH = 16
SEED = 5


def identity_data():
    x = np.eye(NUM_EXAMPLES, dtype="float32")
    y = np.arange(NUM_EXAMPLES) % NUM_CLASSES
    return x, y


def make_dataset_fn(mixup, per_pipeline=True):
    """A `dataset_fn` that shards identity data by input pipeline and maps
    `mixup` (made per pipeline with `for_input_context` unless told not
    to)."""

    def dataset_fn(input_context):
        ds = tf.data.Dataset.from_tensor_slices(identity_data())
        ds = ds.shard(
            input_context.num_input_pipelines, input_context.input_pipeline_id
        )
        batch = input_context.get_per_replica_batch_size(GLOBAL_BATCH)
        mix = mixup.for_input_context(input_context) if per_pipeline else mixup
        return ds.batch(batch).map(mix)

    return dataset_fn


def build_model():
    import keras

    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((NUM_EXAMPLES,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(NUM_CLASSES, activation="softmax"),
        ]
    )


def make_train_step(model, optimizer, run):
    """One SGD step on the mean cross-entropy over the global batch;
    `run(replica_fn, x, y)` runs it on one device or on every replica."""
    import keras

    def replica_step(x, y):
        with tf.GradientTape() as tape:
            loss = keras.losses.categorical_crossentropy(y, model(x))
            loss = tf.reduce_sum(loss) / GLOBAL_BATCH
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(
            zip(grads, model.trainable_variables, strict=True)
        )
        return loss

    @tf.function
    def step(x, y):
        return run(replica_step, x, y)

    return step


def local(strategy, value):
    """The per-replica numpy values of a distributed value on this host."""
    return [np.asarray(v) for v in strategy.experimental_local_results(value)]


def variable_values(strategy, model):
    """Every trainable variable's value on every local replica."""
    return [local(strategy, v.value) for v in model.trainable_variables]


def custom_loop(strategy):
    """Trains with `Mixup` in a `distribute_datasets_from_function` pipeline
    and records exactly the per-replica batches each step consumed, and the
    same training on one device from those batches concatenated."""
    import keras

    import keras_mixup

    with strategy.scope():
        model = build_model()
        optimizer = keras.optimizers.SGD(0.5)
    initial = model.get_weights()

    def run_distributed(fn, x, y):
        losses = strategy.run(fn, args=(x, y))
        return strategy.reduce("SUM", losses, axis=None)

    step = make_train_step(model, optimizer, run_distributed)
    mixup = keras_mixup.Mixup(alpha=1.0, num_classes=NUM_CLASSES, seed=SEED)
    dataset = strategy.distribute_datasets_from_function(make_dataset_fn(mixup))
    xs, ys, losses = [], [], []
    for x, y in dataset:
        xs.append(local(strategy, x))
        ys.append(local(strategy, y))
        losses.append(float(step(x, y)))
    return {
        "x": xs,
        "y": ys,
        "losses": losses,
        "initial": initial,
        "weights": model.get_weights(),
        "replica_weights": variable_values(strategy, model),
    }


def reference_training(initial, global_batches):
    """Single-device training on the given global batches: what the
    distributed run must match."""
    import keras

    model = build_model()
    model.set_weights(initial)
    step = make_train_step(
        model, keras.optimizers.SGD(0.5), lambda fn, x, y: fn(x, y)
    )
    losses = [float(step(x, y)) for x, y in global_batches]
    return model.get_weights(), losses


def mirrored_custom_loop(strategy):
    result = custom_loop(strategy)
    batches = [
        (np.concatenate(x), np.concatenate(y))
        for x, y in zip(result["x"], result["y"], strict=True)
    ]
    weights, losses = reference_training(result["initial"], batches)
    result["reference_weights"] = weights
    result["reference_losses"] = losses
    return result


def mirrored_fit(strategy):
    """`model.fit` on a distributed dataset of `Mixup` batches."""
    import keras

    import keras_mixup

    with strategy.scope():
        model = build_model()
        model.compile(
            optimizer=keras.optimizers.SGD(0.5),
            loss="categorical_crossentropy",
        )
    initial = model.get_weights()
    mixup = keras_mixup.Mixup(alpha=1.0, num_classes=NUM_CLASSES, seed=SEED)
    dataset = strategy.distribute_datasets_from_function(make_dataset_fn(mixup))
    history = model.fit(dataset, epochs=3, verbose=0)
    return {
        "losses": history.history["loss"],
        "initial": initial,
        "weights": model.get_weights(),
        "replica_weights": variable_values(strategy, model),
    }


def mirrored_replica_draws(strategy):
    """`Mixup.mix` called inside `strategy.run` (as a train step does),
    with its seed source created outside and inside `strategy.scope()`."""
    import keras_mixup

    def mix_on_every_replica(mixup):
        @tf.function
        def run():
            return strategy.run(lambda: mixup.mix(tf.eye(8), tf.range(8))[0])

        return local(strategy, run())

    outside = keras_mixup.Mixup(alpha=1.0, num_classes=8, seed=SEED)
    with strategy.scope():
        inside = keras_mixup.Mixup(alpha=1.0, num_classes=8, seed=SEED)
        inside_again = keras_mixup.Mixup(alpha=1.0, num_classes=8, seed=SEED)
    return {
        "outside": mix_on_every_replica(outside),
        "inside": mix_on_every_replica(inside),
        "inside_again": mix_on_every_replica(inside_again),
    }


def mirrored_pipelines(strategy):
    """Two input pipelines in one process (one per replica): with
    `for_input_context` they draw differently from the same seed; with a
    fresh `Mixup(seed=...)` each they draw the same lam. Also a `Mixup`
    built inside `strategy.scope()` mapped in the default single pipeline."""
    import keras_mixup

    options = tf.distribute.InputOptions(
        experimental_replication_mode=(
            tf.distribute.InputReplicationMode.PER_REPLICA
        ),
    )

    def first_batches(dataset_fn, options=None):
        dataset = strategy.distribute_datasets_from_function(
            dataset_fn, options
        )
        x, _ = next(iter(dataset))
        return local(strategy, x)

    def fresh_mixup_per_pipeline(input_context):
        mixup = keras_mixup.Mixup(alpha=1.0, num_classes=NUM_CLASSES, seed=SEED)
        return make_dataset_fn(mixup, per_pipeline=False)(input_context)

    with strategy.scope():
        in_scope = keras_mixup.Mixup(
            alpha=1.0, num_classes=NUM_CLASSES, seed=SEED
        )
    # The default (per-worker) pipeline first: in TF 2.21 a MirroredStrategy
    # keeps the PER_REPLICA mode for later calls once it has been used.
    result = {
        "built_in_scope": first_batches(
            make_dataset_fn(in_scope, per_pipeline=False)
        )
    }
    shared = keras_mixup.Mixup(alpha=1.0, num_classes=NUM_CLASSES, seed=SEED)
    result["for_input_context"] = first_batches(
        make_dataset_fn(shared), options
    )
    result["same_seed_each"] = first_batches(fresh_mixup_per_pipeline, options)
    return result


def mirrored_in_model(strategy):
    """`MixupLayer` and `MixupModel` (latent) built under `strategy.scope()`
    and trained with `model.fit` and a `MixupSchedule`; what each replica
    draws inside `strategy.run`; where the mixing state's variables live
    for objects created inside and outside the scope."""
    import keras

    import keras_mixup

    def classifier(name):
        keras.utils.set_random_seed(0)
        return keras.Sequential(
            [
                keras.Input((NUM_EXAMPLES,)),
                keras.layers.Dense(8, activation="relu"),
                keras_mixup.MixupLayer(alpha=1.0, seed=SEED, name=name),
                keras.layers.Dense(NUM_CLASSES, activation="softmax"),
            ]
        )

    outside = keras_mixup.MixupLayer(alpha=1.0, seed=SEED)
    with strategy.scope():
        layer_model = classifier("mix")
        layer_model.compile(
            optimizer=keras.optimizers.SGD(0.5),
            loss="sparse_categorical_crossentropy",
        )
        mixup_model = keras_mixup.MixupModel(
            classifier("hidden_mix"),
            alpha=1.0,
            num_classes=NUM_CLASSES,
            mix_at="latent",
            seed=SEED,
        )
        mixup_model.compile(
            optimizer=keras.optimizers.SGD(0.5),
            loss="categorical_crossentropy",
        )
    layer = layer_model.get_layer("mix")
    x, y = identity_data()
    result = {}
    # MixupModel gets one-hot labels: with integer ones, Keras' symbolic
    # build under a strategy sees labels of shape [batch] that are no longer
    # integers and fails before the first step.
    for name, model, target, labels in [
        ("layer", layer_model, layer, y),
        ("model", mixup_model, mixup_model, np.eye(NUM_CLASSES)[y]),
    ]:
        dataset = tf.data.Dataset.from_tensor_slices((x, labels))
        dataset = dataset.batch(GLOBAL_BATCH)
        initial = model.get_weights()
        schedule = keras_mixup.MixupSchedule(target, alpha={0: 1.0, 1: 0.5})
        history = model.fit(dataset, epochs=2, callbacks=[schedule], verbose=0)
        state = target.mixing_state
        result[name] = {
            "losses": history.history["loss"],
            "changed": any(
                not np.allclose(a, b)
                for a, b in zip(initial, model.get_weights(), strict=True)
            ),
            "alpha": local(strategy, state.alpha),
            "alpha_type": type(state.alpha).__name__,
            "generator_type": type(
                target.engine.seed_source.generator
            ).__name__,
        }

    @tf.function
    def replica_draws():
        eye = tf.eye(8)
        return (
            strategy.run(lambda: layer(eye, training=True)),
            strategy.run(lambda: outside(eye, training=True)),
            strategy.run(lambda: mixup_model.mix(eye, tf.range(8) % 4)[1]),
        )

    in_layer, out_layer, model_labels = replica_draws()
    result["draws"] = {
        "layer": local(strategy, in_layer),
        "outside_layer": local(strategy, out_layer),
        "model_labels": local(strategy, model_labels),
    }
    result["outside_alpha_type"] = type(outside.mixing_state.alpha).__name__
    return result


def mirrored_cutmix(strategy):
    """`CutMix` and the switch inside `strategy.run` (as a train step
    mixes), on 8 index images (image i filled with i)."""
    import keras_mixup

    images = np.arange(8, dtype="float32").reshape(-1, 1, 1, 1) * np.ones(
        (8, 8, 8, 1), "float32"
    )
    with strategy.scope():
        cut = keras_mixup.CutMix(num_classes=8, seed=SEED)
        switch = keras_mixup.Mixup(
            alpha=1.0, num_classes=8, cutmix_alpha=1.0, seed=SEED
        )

    def on_every_replica(mixer):
        @tf.function
        def run():
            return strategy.run(lambda: mixer.mix(images, tf.range(8))[:2])

        x, y = run()
        return local(strategy, x), local(strategy, y)

    return {"cutmix": on_every_replica(cut), "switch": on_every_replica(switch)}


#: Scenario name -> function(strategy) -> dict of numpy results. Run in
#: this order; "pipelines" stays last (it leaves the strategy in PER_REPLICA
#: input mode).
MIRRORED = {
    "custom_loop": mirrored_custom_loop,
    "fit": mirrored_fit,
    "replica_draws": mirrored_replica_draws,
    "in_model": mirrored_in_model,
    "cutmix": mirrored_cutmix,
    "pipelines": mirrored_pipelines,
}


def run_mirrored():
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    return {name: scenario(strategy) for name, scenario in MIRRORED.items()}


def multiworker_worker():
    """One worker of a 2-worker `MultiWorkerMirroredStrategy` (TF_CONFIG
    set by the test), training with a custom loop. (`model.fit` is not run:
    Keras 3 fails under this strategy before the first step, in its own
    symbolic build, keras-team/keras#20585.)"""
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    assert strategy.num_replicas_in_sync == 2
    return {"custom_loop": custom_loop(strategy)}


def main(argv):
    mode, out = argv[1], argv[2]
    if mode == "mirrored":
        result = run_mirrored()
    elif mode == "worker":
        result = multiworker_worker()
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    with open(out, "wb") as f:
        pickle.dump(result, f)
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv)
