"""The contract every registered variant passes, on every backend.

`variant_contract_scenarios.py` runs each registered variant (and a choice
among all of them) through the in-model API and `tf.data` under one Keras
backend, on hand-built inputs whose channels one-hot encode each example's
index: every value must be a convex combination of the example and its
partners, label weights must equal the pixel fractions, masks and boxes
must follow the pixels, an example alone or unmixed must come back
exactly, batches of 1 and 0, uint8 / float16 / bfloat16, XLA or `jax.jit`,
the same seed the same result, and a `.keras` round trip. A new variant
gets these tests by registering.
"""

import pathlib

import pytest
from conftest import BACKENDS, run_scenario
from variant_contract_scenarios import CHECKS, specs

SCENARIOS = pathlib.Path(__file__).with_name("variant_contract_scenarios.py")
NAMES = list(specs())


@pytest.fixture(scope="module", params=BACKENDS)
def results(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"contract_{request.param}")
    # Every variant and a choice, each compiled (XLA, jax.jit): minutes on
    # a loaded CPU.
    return run_scenario(
        request.param, SCENARIOS, "contract", folder, timeout=900
    )


@pytest.mark.parametrize("check", [*CHECKS, "saved"])
@pytest.mark.parametrize("name", NAMES)
def test_every_variant_passes_the_contract(results, name, check):
    assert results[name][check] is None, results[name][check]
