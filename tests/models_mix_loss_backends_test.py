"""Loss mixing on TensorFlow, JAX and PyTorch: one step with an injected
draw equals the formula, computed by hand from the model's weights, alone
and with RegMixup, and a saved model loads and resumes (see
mix_loss_backend_scenarios.py, run in the shared process of each
backend)."""

import pytest
from conftest import BACKENDS, shared_result


@pytest.fixture(params=BACKENDS)
def result(request):
    return shared_result(request, request.param, "mix_loss_scenario")


def test_sparse_sequence_loss_with_ignore_class_is_the_mixed_formula(result):
    found = result["sparse_sequences"]
    assert found["logged"] == pytest.approx(found["expected"], rel=1e-6)


def test_mean_squared_error_is_mixed_not_the_blended_targets(result):
    found = result["mean_squared_error"]
    assert found["logged"] == pytest.approx(found["expected"], rel=1e-6)
    # Not linear in the target: blending the targets is another loss.
    assert abs(found["logged"] - found["blended_targets"]) > 1.0


def test_regmixup_adds_the_clean_loss_to_the_mixed_loss(result):
    found = result["regmixup"]
    for name, expected in found["expected"].items():
        assert found["logged"][name] == pytest.approx(expected, rel=1e-6), name


def test_a_saved_model_loads_with_mix_loss_and_resumes(result):
    found = result["save_and_resume"]
    assert found["mix_loss"] is True and found["num_classes"] is None
    assert found["predicted"] == 0.0
    first, loaded = found["next_losses"]
    assert loaded == pytest.approx(first, rel=1e-6)
    assert found["next_weights"] < 1e-6
