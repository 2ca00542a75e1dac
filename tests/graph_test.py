"""Mixing runs where the graph runs: no host round trip in the traced graphs.

A host round trip at run time needs a Python-function op (`tf.py_function`,
`tf.numpy_function`: `EagerPyFunc`, `PyFunc`, `PyFuncStateless`) or an op
pinned to the CPU; a numpy call at trace time either fails on a symbolic
tensor or freezes a constant (two runs of one trace would then mix alike).
The helpers below inspect a traced graph, its function library included
(map functions, while-loop bodies, nested calls), for all three. Another API
checks its own graphs with:

    assert_runs_on_any_device(function_graph(layer, x, training=True))
    assert_runs_on_any_device(dataset_graph(ds))
"""

import engine_helpers
import numpy as np
import pytest
import tensorflow as tf

import keras_mixup
from keras_mixup import pairing

HOST_OPS = frozenset({"PyFunc", "PyFuncStateless", "EagerPyFunc"})


def all_nodes(graph_def):
    """Every node of a GraphDef and of every function in its library, as
    `(where, node)` pairs."""
    for node in graph_def.node:
        yield "graph", node
    for function in graph_def.library.function:
        for node in function.node_def:
            yield function.signature.name, node


def host_round_trips(graph_def):
    """The nodes that run Python or are pinned to a CPU."""
    found = []
    for where, node in all_nodes(graph_def):
        if node.op in HOST_OPS:
            found.append(f"{where}/{node.name}: op {node.op}")
        if "cpu" in node.device.lower():
            found.append(f"{where}/{node.name}: device {node.device}")
    return found


def assert_runs_on_any_device(graph_def):
    found = host_round_trips(graph_def)
    assert not found, "host round trips:\n" + "\n".join(found)


def op_types(graph_def):
    return {node.op for _, node in all_nodes(graph_def)}


def function_graph(fn, *args, **kwargs):
    """The GraphDef of `fn` traced by `tf.function` on these arguments."""
    concrete = tf.function(fn).get_concrete_function(*args, **kwargs)
    return concrete.graph.as_graph_def()


def dataset_graph(dataset):
    """The GraphDef of an input pipeline, map functions in its library.
    (Stateful ops such as the seed generator's are kept, with a warning.)"""
    serialized = dataset._as_serialized_graph(
        external_state_policy=tf.data.experimental.ExternalStatePolicy.IGNORE
    )
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(serialized.numpy())
    return graph_def


# The checker finds what it is meant to find.


def test_the_checker_finds_a_py_function_in_a_nested_function():
    @tf.function
    def inner(x):
        return tf.py_function(lambda t: t * 2, [x], tf.float32)

    def outer(x):
        return tf.map_fn(inner, x)

    found = host_round_trips(function_graph(outer, tf.ones([2, 3])))
    assert any("EagerPyFunc" in f for f in found), found


def test_the_checker_finds_a_numpy_function_in_a_map_function():
    ds = tf.data.Dataset.range(4).map(
        lambda i: tf.numpy_function(lambda v: v + 1, [i], tf.int64)
    )
    found = host_round_trips(dataset_graph(ds))
    assert any("PyFunc" in f for f in found), found


def test_the_checker_finds_an_op_pinned_to_the_cpu():
    def pinned(x):
        with tf.device("/cpu:0"):
            return x * 2

    found = host_round_trips(function_graph(pinned, tf.ones([2])))
    assert any("device" in f and "CPU" in f.upper() for f in found), found


# keras_mixup's graphs.


def identity_batches(num_classes=4):
    x = {"image": tf.ones([8, 4, 4, 3], tf.uint8), "v": tf.eye(8)}
    return x, tf.range(8) % num_classes, tf.ones([8])


@pytest.mark.parametrize("mode", ["elem", "batch"])
def test_mixup_in_a_tf_function_stays_in_the_graph(mode):
    mixup = keras_mixup.Mixup(alpha=0.4, num_classes=4, mode=mode, seed=1)
    x, y, weight = identity_batches()
    graph = function_graph(mixup, x, y, weight)
    assert_runs_on_any_device(graph)
    # The walk reaches the sampler's nested loop and the seed generator.
    expected = {"StatelessRandomGammaV3", "RngReadAndSkip", "GatherV2"}
    assert expected <= op_types(graph)
    # Randomness is drawn in the graph, not frozen at trace time.
    traced = tf.function(mixup)
    first, second = traced(x, y, weight)[0], traced(x, y, weight)[0]
    assert not np.array_equal(first["v"], second["v"])


def test_mixup_in_dataset_map_stays_in_the_graph():
    x, y, _ = identity_batches()
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(4).repeat(2)
    ds = ds.map(
        keras_mixup.Mixup(alpha=0.4, num_classes=4, seed=2),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    graph = dataset_graph(ds)
    assert_runs_on_any_device(graph)
    assert {"MapDataset", "ParallelMapDatasetV2"} & op_types(graph)
    assert {"StatelessRandomGammaV3", "RngReadAndSkip"} <= op_types(graph)
    batches = [b[0]["v"].numpy() for b in ds]
    assert not np.array_equal(batches[0], batches[2])


def test_sample_lambda_and_the_core_stay_in_the_graph():
    def core(x, y):
        lam = keras_mixup.sample_lambda([8], 0.2, tf.constant([1, 2]))
        partner = pairing.random_partner(8, tf.constant([3, 4]))
        return engine_helpers.mix_batch(x, y, None, lam, partner, num_classes=4)

    x, y, _ = identity_batches()
    assert_runs_on_any_device(function_graph(core, x, y))


# The in-model APIs: the layer in a traced model call, the training steps.


def small_model(size=8, layer=True):
    import keras

    inputs = keras.Input((size,))
    hidden = keras.layers.Dense(6)(inputs)
    if layer:
        hidden = keras_mixup.MixupLayer(alpha=0.4, seed=1, name="mix")(hidden)
    outputs = keras.layers.Dense(4, activation="softmax")(hidden)
    return keras.Model(inputs, outputs)


def train_step_graph(model, *data):
    """The graph of `model.train_step` traced as `fit` traces it, with the
    optimizer's variables built first (as `fit` does)."""
    model.optimizer.build(model.trainable_variables)
    return function_graph(model.train_step, data)


def test_mixup_layer_in_a_traced_model_call_stays_in_the_graph():
    model = small_model()
    x = tf.random.stateless_uniform([8, 8], [1, 2])
    graph = function_graph(lambda x: model(x, training=True), x)
    assert_runs_on_any_device(graph)
    expected = {"StatelessRandomGammaV3", "RngReadAndSkip", "GatherV2"}
    assert expected <= op_types(graph)


@pytest.mark.parametrize("mix_at", ["input", "latent"])
def test_mixup_model_train_step_stays_in_the_graph(mix_at):
    model = keras_mixup.MixupModel(
        small_model(), alpha=0.4, num_classes=4, mix_at=mix_at, seed=2
    )
    model.compile("sgd", "categorical_crossentropy")
    x = tf.random.stateless_uniform([8, 8], [1, 2])
    graph = train_step_graph(model, x, tf.range(8) % 4)
    assert_runs_on_any_device(graph)
    expected = {"StatelessRandomGammaV3", "RngReadAndSkip", "GatherV2"}
    assert expected <= op_types(graph)


def test_mixup_gan_train_step_stays_in_the_graph():
    import keras

    generator = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
    discriminator = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    gan = keras_mixup.MixupGAN(generator, discriminator, 2, alpha=0.4, seed=3)
    gan.compile(d_optimizer="adam", g_optimizer="adam")
    gan.d_optimizer.build(discriminator.trainable_variables)
    gan.g_optimizer.build(generator.trainable_variables)
    graph = function_graph(gan.train_step, tf.ones([8, 3]))
    assert_runs_on_any_device(graph)
    assert {"StatelessRandomGammaV3", "RngReadAndSkip"} <= op_types(graph)
