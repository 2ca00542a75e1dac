"""`MixupLayer`, `MixupModel` and `MixupSchedule` on TensorFlow, JAX and
PyTorch.

`models_backend_scenarios.py` runs the in-model guide's examples and every
option a step takes under each backend, in its own process (Keras picks its
backend once, at import); JAX sees two CPU devices, for `DataParallel`. The
backends run in turn, each loading the `.keras` files the previous one saved
(TensorFlow to JAX, JAX to PyTorch).
"""

import math
import pathlib

import pytest
from conftest import BACKENDS, run_in_turn

SCENARIOS = pathlib.Path(__file__).with_name("models_backend_scenarios.py")
TWO_DEVICES = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return run_in_turn(
        SCENARIOS,
        "in_model",
        tmp_path_factory,
        env_of=lambda backend: TWO_DEVICES if backend == "jax" else None,
    )


@pytest.fixture(params=BACKENDS)
def result(request, results):
    return results[request.param]


def _finite(losses):
    return bool(losses) and all(math.isfinite(v) for v in losses)


def test_the_readme_examples_train_and_mix_only_while_training(result):
    assert _finite(result["layer_losses"]) and _finite(result["latent_losses"])
    assert result["layer_identity"] and result["layer_mixes"]
    assert result["layer_mixed_dtype"] == "float32"
    assert result["dict_labels_shape"] == [32, 4]
    assert result["mix_points"] == ["input", "mix_1", "mix_2"]


def test_a_step_blends_inputs_and_labels_with_the_same_lam(result):
    assert result["rows_sum_to_one"] and result["at_most_two_sources"]
    assert result["labels_equal_inputs"]
    # alpha = 1: lam is rarely 0 or 1; a random permutation of 8 leaves
    # about 1 example its own partner (3 with PyTorch's stream for seed 5).
    assert result["mixed_rows"] >= 4


def test_every_pairing_and_option_trains(result):
    losses = result["option_losses"]
    assert set(losses) == {
        "random",
        "knn",
        "knn_meanpool",
        "knn_countsketch",
        "same_class",
        "prob",
        "label_smoothing",
        "batch_mode",
        "list",
    }
    for name, values in losses.items():
        assert _finite(values), (name, values)


def test_the_schedule_switch_and_alpha_apply_inside_the_step(result):
    # Mixing off: the step is the plain step on one-hot labels.
    assert result["off_vs_plain"] < 1e-5
    assert result["on_vs_plain"] > 1e-3
    assert result["same_seed"] == 0.0
    # An alpha set at epoch 1 changes the draws of that epoch.
    assert result["alpha_changed_vs_kept"] > 1e-4
    assert result["alpha_after_fit"] == 8.0


def test_mixed_bfloat16_trains(result):
    assert _finite(result["bfloat16_losses"])
    assert result["bfloat16_output"] == "bfloat16"  # the compute dtype


def test_data_parallel_on_two_jax_devices(results):
    jax = results["jax"]
    assert jax["devices"] == 2
    assert _finite(jax["data_parallel_losses"])


def test_saved_models_load_and_predict_the_same_on_another_backend(result):
    assert result["reloaded_layer"] == 0.0
    assert result["reloaded_wrapper"] == 0.0
    if result["backend"] != "tensorflow":  # loads the previous backend's
        assert result["loaded_layer"] < 1e-5
        assert result["loaded_wrapper"] < 1e-5


def test_jax_and_torch_models_never_import_tensorflow(results):
    for backend in ("jax", "torch"):
        assert not results[backend]["tensorflow_imported"], backend
        assert not results[backend]["tfp_imported"], backend


def test_a_layer_mapped_over_tf_data_mixes_with_tensorflow(result):
    assert result["tf_data_is_tensorflow"] and result["tf_data_mixed"]
    assert result["tf_data_labels_follow"]
