"""`MixupLayer`, `MixupModel` and `MixupSchedule` on TensorFlow, JAX and
PyTorch.

`models_backend_scenarios.py` runs the in-model guide's examples and every
option a step takes under each backend, in the scenario chain's process
(see `conftest.CHAIN`: Keras picks its backend once, at import); JAX sees
two CPU devices, for `DataParallel`. `in_model_saving` runs the backends in
turn, each loading the `.keras` files the previous one saved (TensorFlow
to JAX, JAX to PyTorch); `in_model`, the rest, runs under each backend at
once.
"""

import math
import re

import pytest
from conftest import BACKENDS, chain_results

#: `{backend: what models_backend_scenarios.in_model and in_model_saving
#: returned}`.
results = chain_results("in_model", "in_model_saving")


@pytest.fixture(params=BACKENDS)
def result(request, results):
    return results[request.param]


def _finite(losses):
    return bool(losses) and all(math.isfinite(v) for v in losses)


def test_the_readme_examples_train_and_mix_only_while_training(result):
    assert _finite(result["layer_losses"]) and _finite(result["latent_losses"])
    assert result["layer_identity"] and result["layer_mixes"]
    assert result["layer_mixed_dtype"] == "float32"
    assert result["dict_labels_shape"] == [16, 4]
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


def test_a_loaded_model_resumes_fit_with_its_optimizer(result):
    expected = {"input", "latent", "list"}
    if result["backend"] == "tensorflow":
        expected.add("regmixup")  # RegMixup runs on TensorFlow only, now
    found = {
        k.removeprefix("resume_")
        for k in result
        if k
        in ("resume_input", "resume_latent", "resume_list", "resume_regmixup")
    }
    assert found == expected
    for name in expected:
        resumed = result[f"resume_{name}"]
        assert resumed["compile_warnings"] == [], name
        # Two steps before saving, two after: the iteration count goes on.
        assert resumed["iterations_loaded"] == 2, name
        assert resumed["iterations_after"] == 4, name
        assert resumed["moved"] > 1e-3, name  # the steps changed weights
        # The same next steps as the model that was saved: seeds, weights
        # and optimizer slots all carried over.
        if result["backend"] == "tensorflow":
            assert resumed["next_steps"] == 0.0, name
        else:
            assert resumed["next_steps"] < 1e-6, name


def test_a_file_saved_on_another_backend_resumes(result):
    if result["backend"] == "tensorflow":  # loads nothing: it runs first
        return
    other = result["resume_other_backend"]
    assert other["carried"] < 1e-6  # weights and optimizer slots
    assert other["iterations_loaded"] == 2
    assert other["iterations_after"] == 4
    assert _finite(other["losses"])


#: Each mistake, and the ValueError every backend raises for it.
MISTAKES = {
    "ids_without_num_classes": r"^Integer labels \(class ids\) need "
    r"`num_classes`.*dtype int32 and shape \(8,\)\.$",
    "one_hot_too_wide": r"^The labels have 5 values per example "
    r"\(shape \(8, 5\)\), but `num_classes=3`",
    "float_ids": r"^`num_classes=3` one-hot encodes class ids, but the "
    r"labels are floats of shape \(8,\)",
    "id_out_of_range": r"^Labels must be in \[0, 3\) \(num_classes=3\); "
    r"received the class id 7\.$",
    "negative_weight": r"^`sample_weight` must hold finite weights >= 0 "
    r".*received the weight -0\.5\.$",
    "nan_weight": r"^`sample_weight` must hold finite weights >= 0 "
    r".*received the weight nan\.$",
    "evaluate_id_out_of_range": r"^Labels must be in \[0, 3\) "
    r"\(num_classes=3\); received the class id 7\.$",
    "nan_one_hot_label": r"^Float labels \(one-hot, soft or continuous "
    r"targets\) must be finite .*received the label nan\.$",
    "inf_soft_label": r"^Float labels .* must be finite .*received the "
    r"label inf\.$",
    "negative_int_weight": r"^`sample_weight` must hold finite weights >= 0 "
    r".*received the weight -2\.$",
    "layer_nan_label": r"^Float labels .* must be finite .*received the "
    r"label nan\.$",
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_the_same_mistake_raises_the_same_error_on_every_backend(
    results, mistake
):
    messages = {b: results[b]["mistakes"][mistake] for b in BACKENDS}
    for backend, message in messages.items():
        assert message is not None, (backend, "raised nothing")
        assert re.match(MISTAKES[mistake], message), (backend, message)
    assert len(set(messages.values())) == 1, messages


def test_a_refused_batch_changes_nothing_and_the_model_trains_on(result):
    after = result["after_refused_batch"]
    assert re.match(MISTAKES["id_out_of_range"], after["raised"])
    assert after["unchanged"] == 0.0
    assert after["then_trained"] > 1e-4
    assert after["predicts"] == [16, 3]


def test_the_dict_form_of_the_layer_builds_in_a_functional_model(result):
    assert result["dict_layer_shapes"] == [[None, 8], [None, 8]]
    assert result["dict_layer_identity"] and result["dict_layer_mixes"]
    assert result["dict_layer_labels_follow"]


def test_a_jax_step_mixes_without_host_callbacks(results):
    """A JAX `MixupModel` step checks its batch with array ops, so the mix
    it compiles holds no host callback (each a round trip into Python per
    step); `model.mix` inside a user's `jax.jit` keeps its checks."""
    if "jax" not in results:
        pytest.skip("JAX is not among the backends run")
    jax = results["jax"]
    assert jax["step_callbacks"] == 0
    assert jax["mix_callbacks"] > 0  # finite labels, valid weights
    assert jax["checks_back_on"] is True
