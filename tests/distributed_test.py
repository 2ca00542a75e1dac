"""`Mixup` under `tf.distribute`: MirroredStrategy and MultiWorkerMirrored.

The strategies run in subprocesses (`distributed_scenarios.py`): two logical
CPU devices must be configured before TensorFlow initialises its devices,
and a multi-worker cluster needs one process per worker. The pytest process
keeps its default single device. In-process tests check the seed folding
itself.
"""

import os
import pickle
import socket
import subprocess
import sys
from pathlib import Path

import distributed_scenarios as sc
import numpy as np
import pytest
import tensorflow as tf
from conftest import (
    background_run,
    decode_cuts,
    decode_identity_rows,
    finish_processes,
)

import keras_mixup
from keras_mixup import state

HERE = Path(__file__).resolve().parent
SCENARIOS = HERE / "distributed_scenarios.py"
PACKAGE_ROOT = Path(keras_mixup.__file__).resolve().parent.parent
TIMEOUT = 300  # seconds per subprocess; a hung cluster fails, never hangs


def scenario_env(**extra):
    """The environment of a scenario process: this checkout of the package
    first on the path, TensorFlow quiet, one thread pool per process."""
    path = [str(PACKAGE_ROOT), str(HERE)]
    if os.environ.get("PYTHONPATH"):
        path.append(os.environ["PYTHONPATH"])
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env.update(
        PYTHONPATH=os.pathsep.join(path),
        KERAS_BACKEND="tensorflow",
        TF_CPP_MIN_LOG_LEVEL="3",
        **extra,
    )
    return env


def start(mode, out, **env):
    return subprocess.Popen(
        [sys.executable, str(SCENARIOS), mode, str(out)],
        env=scenario_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(processes):
    finish_processes(processes, TIMEOUT)


def load(path):
    with open(path, "rb") as f:
        return pickle.load(f)


def _mirrored(tmp_path_factory):
    out = tmp_path_factory.mktemp("mirrored") / "results.pkl"
    finish([start("mirrored", out)])
    return load(out)


#: Every `MIRRORED` scenario, run once in one subprocess (in the
#: background, see `conftest.Background`).
mirrored = background_run("mirrored", _mirrored, cost=120)


def mirrored_ids(step, replica):
    """One input pipeline, per-replica batches dealt round-robin."""
    per_replica = sc.GLOBAL_BATCH // 2
    first = step * sc.GLOBAL_BATCH + replica * per_replica
    return np.arange(first, first + per_replica)


def check_mixed_batches(result, ids_of):
    """Every per-replica batch is a valid mixup of its own examples (none
    lost, duplicated or reordered); replicas draw different lam."""
    seen = []
    for step, (xs, ys) in enumerate(zip(result["x"], result["y"], strict=True)):
        lams = []
        for replica, (x, y) in enumerate(zip(xs, ys, strict=True)):
            ids = ids_of(step, replica)
            lam, _ = decode_identity_rows(x, ids)
            lams.append(lam)
            seen.extend(ids)
            # Labels are the same blend of the examples' one-hot labels.
            one_hot = np.eye(sc.NUM_CLASSES)[
                np.arange(sc.NUM_EXAMPLES) % sc.NUM_CLASSES
            ]
            np.testing.assert_allclose(y, x @ one_hot, atol=1e-6)
        assert not np.allclose(lams[0], lams[1]), "replicas share lam"
    # Every example was trained on exactly once in the epoch.
    assert sorted(seen) == list(range(sc.NUM_EXAMPLES))


def check_in_sync(replica_weights, weights, initial):
    for values, final in zip(replica_weights, weights, strict=True):
        for value in values[1:]:
            np.testing.assert_array_equal(value, values[0])
        np.testing.assert_array_equal(values[0], final)
    assert any(
        not np.allclose(a, b) for a, b in zip(weights, initial, strict=True)
    ), "training did not change the weights"


def test_mirrored_pipeline_mixes_every_replica_batch(mirrored):
    check_mixed_batches(mirrored["custom_loop"], mirrored_ids)


def test_mirrored_training_matches_one_device(mirrored):
    """Two replicas on their mixed per-replica batches reach the same
    weights as one device on the same examples as one global batch."""
    result = mirrored["custom_loop"]
    np.testing.assert_allclose(
        result["losses"], result["reference_losses"], rtol=1e-5
    )
    for dist, ref in zip(
        result["weights"], result["reference_weights"], strict=True
    ):
        np.testing.assert_allclose(dist, ref, atol=1e-6)
    check_in_sync(
        result["replica_weights"], result["weights"], result["initial"]
    )


def test_mirrored_model_fit_on_a_distributed_mixup_dataset(mirrored):
    result = mirrored["fit"]
    losses = result["losses"]
    assert len(losses) == 3 and np.all(np.isfinite(losses))
    assert losses[-1] < losses[0]
    check_in_sync(
        result["replica_weights"], result["weights"], result["initial"]
    )


def test_mixing_inside_strategy_run_draws_per_replica(mirrored):
    """`Mixup.mix` in a replica context (as in a train step): replicas draw
    different lam and partners whether the Mixup was created outside or
    inside `strategy.scope()`; inside, a fixed seed reproduces them."""
    result = mirrored["replica_draws"]
    for key in ("outside", "inside"):
        first, second = result[key]
        decode_identity_rows(first, np.arange(8))
        decode_identity_rows(second, np.arange(8))
        assert not np.array_equal(first, second), key
    for a, b in zip(result["inside"], result["inside_again"], strict=True):
        np.testing.assert_array_equal(a, b)


def test_input_pipelines_with_one_seed_draw_their_own_lam(mirrored):
    """Two input pipelines (one per replica): `for_input_context` gives
    each its own stream; two `Mixup(seed=5)` without it draw the same lam,
    the failure it exists for. A Mixup built inside `strategy.scope()` maps
    the default single pipeline correctly."""
    result = mirrored["pipelines"]
    # Pipeline k holds examples k, k + 2, ... (sharded by pipeline id).
    ids = [np.arange(k, sc.NUM_EXAMPLES, 2)[:8] for k in (0, 1)]
    lams = [
        decode_identity_rows(x, i)[0]
        for x, i in zip(result["for_input_context"], ids, strict=True)
    ]
    assert not np.allclose(lams[0], lams[1])
    same = [
        decode_identity_rows(x, i)[0]
        for x, i in zip(result["same_seed_each"], ids, strict=True)
    ]
    np.testing.assert_array_equal(same[0], same[1])
    scoped = [
        decode_identity_rows(x, mirrored_ids(0, r))[0]
        for r, x in enumerate(result["built_in_scope"])
    ]
    assert not np.allclose(scoped[0], scoped[1])


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.mark.multiworker
def test_multiworker_mirrored_training(tmp_path):
    """Two worker processes on 127.0.0.1: each input pipeline (one per
    worker) mixes its own shard with its own lam; a custom training loop
    equals one device on the two workers' batches together."""
    import json

    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    outs = [tmp_path / f"worker{i}.pkl" for i in range(2)]
    processes = [
        start(
            "worker",
            outs[i],
            TF_CONFIG=json.dumps(
                {
                    "cluster": {"worker": workers},
                    "task": {"type": "worker", "index": i},
                }
            ),
        )
        for i in range(2)
    ]
    finish(processes)
    results = [load(out) for out in outs]

    loops = [r["custom_loop"] for r in results]
    steps = len(loops[0]["x"])
    assert steps == sc.NUM_EXAMPLES // sc.GLOBAL_BATCH
    per_replica = sc.GLOBAL_BATCH // 2
    for worker, loop in enumerate(loops):
        # Worker w's pipeline holds examples w, w + 2, ...
        shard = np.arange(worker, sc.NUM_EXAMPLES, 2)
        for step, xs in enumerate(loop["x"]):
            assert len(xs) == 1  # one replica per worker
            ids = shard[step * per_replica : (step + 1) * per_replica]
            decode_identity_rows(xs[0], ids)
    # Same seed on both workers, different pipelines: different lam.
    assert not np.allclose(
        loops[0]["x"][0][0].max(1), loops[1]["x"][0][0].max(1)
    )
    # Both workers end with the same weights, equal to one device trained
    # on the two workers' batches as one global batch.
    batches = [
        (
            np.concatenate([loops[0]["x"][s][0], loops[1]["x"][s][0]]),
            np.concatenate([loops[0]["y"][s][0], loops[1]["y"][s][0]]),
        )
        for s in range(steps)
    ]
    weights, losses = sc.reference_training(loops[0]["initial"], batches)
    np.testing.assert_allclose(loops[0]["losses"], losses, rtol=1e-5)
    for loop in loops:
        for a, b in zip(loop["weights"], weights, strict=True):
            np.testing.assert_allclose(a, b, atol=1e-6)


# In-process checks of the seed folding (one device).


def test_seed_source_folds_in_the_input_pipeline_id():
    plain = state.SeedSource(3)
    folded = [
        state.SeedSource(3, input_pipeline_id=i).next_seed() for i in (0, 1)
    ]
    base = plain.next_seed()
    for i, seed in enumerate(folded):
        expected = tf.random.experimental.stateless_fold_in(base, i)
        np.testing.assert_array_equal(seed, expected)
    assert folded[0].dtype == tf.int32 and folded[0].shape == (2,)
    assert not np.array_equal(folded[0], folded[1])


def test_seed_source_folds_in_the_replica_id_in_a_replica_context():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    in_replica = state.SeedSource(4)
    plain = state.SeedSource(4)

    @tf.function
    def draw():
        return strategy.run(in_replica.next_seed)

    expected = tf.random.experimental.stateless_fold_in(plain.next_seed(), 0)
    np.testing.assert_array_equal(draw(), expected)
    # In the cross-replica context (as where a dataset is mapped), nothing
    # is folded in, even for a source created inside the scope.
    with strategy.scope():
        scoped = state.SeedSource(5).next_seed()
    np.testing.assert_array_equal(scoped, state.SeedSource(5).next_seed())


def test_for_input_context_copies_the_config_and_draws_its_own_stream():
    mixup = keras_mixup.Mixup(alpha=1.0, num_classes=8, seed=9)
    contexts = [
        tf.distribute.InputContext(
            num_input_pipelines=2, input_pipeline_id=i, num_replicas_in_sync=2
        )
        for i in (0, 1)
    ]
    copies = [mixup.for_input_context(c) for c in contexts]
    again = mixup.for_input_context(contexts[1])
    for copy in copies:
        assert type(copy) is keras_mixup.Mixup and copy is not mixup
        assert copy.get_config() == mixup.get_config()
    x = tf.eye(8)
    outs = [c(x, tf.range(8))[0].numpy() for c in (*copies, again)]
    lams = [decode_identity_rows(o, np.arange(8))[0] for o in outs]
    assert not np.allclose(lams[0], lams[1])
    np.testing.assert_array_equal(outs[1], outs[2])
    # The original's stream is untouched by its copies.
    np.testing.assert_array_equal(
        mixup(x, tf.range(8))[0],
        keras_mixup.Mixup(alpha=1.0, num_classes=8, seed=9)(x, tf.range(8))[0],
    )


@pytest.mark.parametrize("bad", [None, 1, "pipeline-0"])
def test_for_input_context_refuses_anything_else(bad):
    mixup = keras_mixup.Mixup(num_classes=3)
    with pytest.raises(ValueError, match="`input_context` must be the tf"):
        mixup.for_input_context(bad)


@pytest.mark.parametrize("bad", [-1, 1.0, True, "0"])
def test_seed_source_refuses_a_bad_input_pipeline_id(bad):
    with pytest.raises(ValueError, match="`input_pipeline_id` must be an int"):
        state.SeedSource(1, input_pipeline_id=bad)


def test_mirrored_mixup_layer_and_model_built_in_scope(mirrored):
    """`MixupLayer` and `MixupModel` (latent) built under `strategy.scope()`
    train with `fit` and a `MixupSchedule`; their mixing state's variables
    become mirrored ones, and the schedule sets them on every replica."""
    result = mirrored["in_model"]
    for name in ("layer", "model"):
        trained = result[name]
        assert np.all(np.isfinite(trained["losses"])), name
        assert trained["changed"], name
        assert trained["alpha_type"] == "MirroredVariable", name
        assert [float(a) for a in trained["alpha"]] == [0.5, 0.5], name
    # Created outside the scope: a plain variable (read by every replica).
    assert result["outside_alpha_type"] == "ResourceVariable"


def test_mirrored_replicas_draw_their_own_lam_in_the_model(mirrored):
    """Inside `strategy.run`, each replica mixes with its own lam and
    partners: the layer (created inside or outside the scope) and
    `MixupModel.mix`."""
    draws = mirrored["in_model"]["draws"]
    for name in ("layer", "outside_layer"):
        first, second = draws[name]
        lams = [decode_identity_rows(x, np.arange(8))[0] for x in draws[name]]
        assert not np.allclose(*lams), name
        assert not np.allclose(first, second), name
    first, second = draws["model_labels"]
    np.testing.assert_allclose(first.sum(1), 1.0, atol=1e-6)
    assert not np.allclose(first, second)


def test_mirrored_replicas_cutmix_with_their_own_boxes(mirrored):
    cut_x, cut_y = mirrored["cutmix"]["cutmix"]
    for x, y in zip(cut_x, cut_y, strict=True):
        kept, partner, _ = decode_cuts(x)
        expected = np.zeros((8, 8))
        expected[np.arange(8), partner] += 1 - kept
        expected[np.arange(8), np.arange(8)] += kept
        np.testing.assert_allclose(y, expected, atol=1e-6)
    assert not np.array_equal(cut_x[0], cut_x[1]), "replicas share boxes"
    switch_x, _ = mirrored["cutmix"]["switch"]
    assert not np.array_equal(switch_x[0], switch_x[1])
