"""Bit-identical runs: two processes, same seeds, same mixed batches and
the same weights after training; an unseeded `Mixup` after
`keras.utils.set_random_seed` draws the same in both.

The two runs are scenarios of two TensorFlow processes of the scenario
chain (`deterministic_run_1` last in TensorFlow's in-turn process, which
runs its part `scenarios`, `deterministic_run_2` last in its `in_model`
process, see `conftest.CHAIN`): op determinism is a process-wide switch
that must not leak into the rest of the suite, and each process has run
other scenarios before (the seeds of `run` rule everything the runs
draw). By hand:

    python determinism_test.py OUT.npz
"""

import sys
from pathlib import Path

import numpy as np

NUM_EXAMPLES, FEATURES, NUM_CLASSES, BATCH = 128, 16, 10, 16
EPOCHS = 2


def pipeline(mixup_seed):
    import tensorflow as tf

    import keras_mixup

    rng = np.random.default_rng(0)
    x = rng.normal(size=(NUM_EXAMPLES, FEATURES)).astype("float32")
    y = rng.integers(0, NUM_CLASSES, size=NUM_EXAMPLES)
    mixup = keras_mixup.Mixup(
        alpha=0.4, num_classes=NUM_CLASSES, seed=mixup_seed
    )
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(
        NUM_EXAMPLES, seed=2
    )
    ds = ds.batch(BATCH).map(mixup, num_parallel_calls=tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = True
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def run(out):
    """One deterministic run: the first epoch's mixed batches, then the
    weights after `EPOCHS` epochs of `model.fit` on a fresh pipeline."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(1)
    tf.config.experimental.enable_op_determinism()
    results = {}
    for i, (x, y) in enumerate(pipeline(mixup_seed=3)):
        results[f"x{i}"], results[f"y{i}"] = x.numpy(), y.numpy()
    results["other_seed_x0"] = next(iter(pipeline(mixup_seed=4)))[0].numpy()
    # seed=None: a seed from Python's `random`, which set_random_seed seeded.
    for name in ("unseeded_x0", "unseeded_again_x0"):
        results[name] = next(iter(pipeline(mixup_seed=None)))[0].numpy()

    model = keras.Sequential(
        [
            keras.Input((FEATURES,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(NUM_CLASSES, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    history = model.fit(pipeline(mixup_seed=3), epochs=EPOCHS, verbose=0)
    results["losses"] = np.array(history.history["loss"])
    for i, weight in enumerate(model.get_weights()):
        results[f"w{i}"] = weight
    np.savez(out, **results)


def _scenario(folder):
    """`run` into `folder`, under TensorFlow (nothing on other backends)."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return {}
    out = Path(folder) / "determinism.npz"
    run(out)
    return {"npz": str(out)}


#: The two runs, scenarios of two processes of the scenario chain.
deterministic_run_1 = deterministic_run_2 = _scenario


def test_two_processes_give_bit_identical_batches_and_weights(request):
    # Imported here: the scenario chain imports this file, without pytest.
    from conftest import scenario_result

    outs = [
        scenario_result(request, "tensorflow", f"deterministic_run_{i}")["npz"]
        for i in (1, 2)
    ]
    assert outs[0] != outs[1]
    first, second = (dict(np.load(out)) for out in outs)
    assert first.keys() == second.keys()
    batches = NUM_EXAMPLES // BATCH
    assert {f"x{i}" for i in range(batches)} <= first.keys()
    for key in first:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)
    # The batches are really mixed, and another seed mixes differently.
    assert first["y0"].shape == (BATCH, NUM_CLASSES)
    assert (first["y0"].max(1) < 1).any()
    np.testing.assert_allclose(first["y0"].sum(1), 1.0, atol=1e-6)
    assert not np.array_equal(first["x0"], first["other_seed_x0"])
    # Two unseeded objects of one process draw apart (their keys above are
    # equal across the processes: keras.utils.set_random_seed rules them).
    assert not np.array_equal(first["unseeded_x0"], first["unseeded_again_x0"])
    assert np.all(np.isfinite(first["losses"]))


if __name__ == "__main__":
    run(sys.argv[1])
