"""Every Keras backend: the blend and the labels on TensorFlow, JAX and
PyTorch tensors, and the latent blend's gradient exact on each.

Each backend runs `blending_backend_scenarios.py` in its own process (with the
other scenarios of `conftest.CHAIN`) (Keras
picks its backend once, at import), the three at once, and the tests here
check what it computed.
"""

import re

import numpy as np
import pytest
from conftest import BACKENDS, shared_result

#: Gradient error allowed, relative to the gradient's largest value: float32
#: rounding, summed in another order than automatic differentiation's.
FLOAT32_ERROR = 1e-5
#: float16 and bfloat16 gradients against the float32 formula: half the
#: precision of the dtype, a few roundings.
HALF_ERROR = {"float16": 5e-3, "bfloat16": 4e-2}


@pytest.fixture(params=BACKENDS)
def result(request):
    return shared_result(request, request.param, "blending_scenario")


def test_forward_is_the_formula_on_hand_built_inputs(result):
    # lam = 0.25, 0.5, 0.75, 1 and partners 1, 2, 3, 0, worked by hand.
    assert result["forward"]["hand"] == [
        [7.5, 15.25],
        [3.0, 12.0],
        [22.0, -22.0],
        [100.0, -100.0],
    ]


def test_self_pairs_come_back_exactly_in_every_float_dtype(result):
    # NaN, +-3.4e38, a subnormal and +-0.0 included, at lam 0 and 1 too.
    selves = {k: v for k, v in result["forward"].items() if "self/" in k}
    assert len(selves) >= 3 and all(selves.values()), selves


def test_infinities_paired_with_themselves(result):
    # TensorFlow and JAX return equal values as they are (a select fused
    # into the blend); PyTorch's one-kernel torch.lerp computes inf - inf:
    # NaN, as documented in blend_pair.
    infinities = {
        k: v for k, v in result["forward"].items() if k.startswith("self_inf/")
    }
    assert len(infinities) >= 3
    for key, values in infinities.items():
        if result["backend"] == "torch":
            assert np.isnan(values).all(), (key, values)
        else:
            assert values == [[np.inf, -np.inf]] * 6, (key, values)


def test_half_precision_is_blended_in_float32_and_rounded_once(result):
    # +-60000 blended at lam 0.5 (first - second overflows float16); lam
    # 0.1 to 0.9 (not float16 values) blended with its float32 value.
    for dtype in ("float16", "bfloat16"):
        for key in (f"half/{dtype}", f"half/{dtype}/uneven"):
            half = result["forward"][key]
            assert half == {
                "dtype": dtype,
                "rounded_once": True,
                "finite": True,
            }, key


def test_lam_0_returns_the_second_tensor_exactly(result):
    # Unequal finite values, lam per example and scalar, in every dtype
    # (float64 where the backend has it).
    assert len(result["ends"]) >= 3
    for dtype, (at_zero, _) in result["ends"].items():
        assert at_zero, dtype


def test_lam_1_returns_the_first_tensor_exactly_on_pytorch(result):
    # torch.lerp computes first - (first - second) * (1 - lam) for lam >=
    # 0.5: exact at 1. TensorFlow and JAX compute second + lam * (first -
    # second), which at lam 1 may round (equal values, and so self pairs,
    # are exact everywhere: test_self_pairs_come_back_...).
    at_one = {dtype: ends[1] for dtype, ends in result["ends"].items()}
    if result["backend"] == "torch":
        assert all(at_one.values()), at_one


@pytest.mark.parametrize("result", ["jax"], indirect=True)
def test_jax_blend_is_one_fusion_under_jit(result):
    # The compiled blend makes each blended array in one loop fusion (the
    # gather, the formula and the select of equal values): one pass over
    # the batch, none for the gather alone.
    fused = result["fused"]
    assert fused["batch"] == ["fusion"], fused
    assert fused["batch_and_labels"] in (["fusion"], ["fusion", "fusion"])
    # A whole MixupLayer call (draws, label check, one-hot, both blends):
    # one pass over the images too.
    assert fused["layer"] == ["fusion"], fused


def test_integer_inputs_are_blended_in_the_float_dtype(result):
    dtype, values = result["forward"]["int"]
    assert dtype == "float32"
    assert values == [[2.5, 3.5], [4.0, 5.0], [5.5, 6.5], [7.0, 8.0]]


def _float32_cases(result):
    return {
        key: case
        for key, case in result["gradients"].items()
        if "/scalar=" in key or key.endswith("/float64")
    }


def test_gradients_match_autodiff_of_the_plain_formula(result):
    cases = _float32_cases(result)
    # Both pairings, lam per example and scalar; compiled too (jax.jit,
    # the fused tf.function) except on PyTorch.
    assert len(cases) >= 4
    for key, case in cases.items():
        dtype = key.split("/")[-1] if key.endswith("64") else "float32"
        assert case["dtypes"] == [dtype, dtype, "float32"], key
        assert max(case["errors"]) < FLOAT32_ERROR, (key, case["errors"])


def test_gradient_of_the_inputs_alone_with_lam_a_constant(result):
    assert result["gradients"]["repeats/x_only"] < FLOAT32_ERROR


def test_gradients_take_the_gather_shaped_backward(result):
    assert result["custom_backward"]


def test_float64_gradients_of_the_inputs_are_exact_to_float64(result):
    case = result["gradients"].get("repeats/float64")
    if result["backend"] == "jax":
        assert case is None  # JAX computes in float32 without x64
        return
    assert max(case["errors"][:2]) < 1e-12, case["errors"]


def test_half_precision_gradients_keep_their_dtype(result):
    for pairing in ("permutation", "repeats"):
        for dtype, error in HALF_ERROR.items():
            case = result["gradients"][f"{pairing}/{dtype}"]
            assert case["dtypes"] == [dtype, dtype, "float32"]
            assert max(case["errors"]) < error, (pairing, dtype, case)


def test_labels_are_encoded_and_smoothed(result):
    labels = result["labels"]
    one_hot = [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    assert labels["one_hot"] == one_hot and labels["one_hot_dtype"] == "float32"
    assert labels["column"] == one_hot and labels["float_kept"] == one_hot
    smooth = [[0.1 if v == 0 else 0.8 for v in row] for row in one_hot]
    np.testing.assert_allclose(labels["smooth"], smooth, atol=1e-7)
    np.testing.assert_allclose(labels["binary_smooth"], [0.1, 0.9], atol=1e-7)
    assert labels["class_ids"] == [[2, 0, 1], [0, 2, 1], [2, 0, 1]]
    assert labels["masks"] == [
        [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]],
        [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]],
    ]


def test_out_of_range_class_ids_are_refused_naming_them(result):
    labels = result["labels"]
    for key, bad in (("out_of_range", 5), ("negative", -1)):
        message = labels[key] or ""
        assert "Labels must be in [0, 3) (num_classes=3)" in message, key
        assert re.search(rf"received the class id\W*{bad}\b", message), key


@pytest.mark.parametrize("result", ["jax"], indirect=True)
def test_out_of_range_ids_are_refused_inside_jax_jit(result):
    message = result["labels"]["jit_out_of_range"] or ""
    assert "Labels must be in [0, 3)" in message
    assert "received the class id 5" in message


def test_float_labels_that_do_not_fit_num_classes_are_refused(result):
    labels = result["labels"]
    assert "one-hot encodes class ids" in (labels["float_ids"] or "")
    assert "shape (2,)" in labels["float_ids"]
    assert "3 values per example" in (labels["width"] or "")


def test_fused_true_is_refused_only_on_pytorch(result):
    if result["backend"] == "torch":
        assert (
            "`fused=True` compiles the blend with XLA" in result["fused_true"]
        )
    else:
        assert result["fused_true"] is None


def test_jax_and_pytorch_never_import_tensorflow(result):
    imported = result["tensorflow_imported"]
    assert imported == (result["backend"] == "tensorflow")
