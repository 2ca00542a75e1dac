"""Runs several scenarios under one Keras backend, in one process: the
scenario chain of conftest.py (`scenario_result`) starts one per backend,
so that each framework is imported once, not once per test module.

    KERAS_BACKEND=jax python tests/scenario_runner.py \
        '[["backend_scenarios.py", "beta", []],
          ["variant_contract_scenarios.py", "contract", ["DIR"]]]'

prints one JSON object, `{scenario name: what it returned}`; a scenario
that raised returns `{"error": its traceback}` and the others still run.
Keras's global state (names, the dtype policy) is reset before each, as
in a fresh process.
"""

import importlib
import json
import pathlib
import sys
import traceback

HERE = pathlib.Path(__file__).parent


def _reset():
    keras = sys.modules.get("keras")
    if keras is not None:
        keras.utils.clear_session(free_memory=False)
        keras.config.set_dtype_policy("float32")


def run(specs):
    """`{name: module.name(*args)}` for each `[module.py, name, args]` in
    `specs`."""
    sys.path.insert(0, str(HERE))
    found = {}
    for script, name, args in specs:
        try:
            _reset()
            module = importlib.import_module(script.removesuffix(".py"))
            found[name] = getattr(module, name)(*args)
        except Exception:  # reported to the tests that need this scenario
            found[name] = {"error": traceback.format_exc()[-4000:]}
    return found


if __name__ == "__main__":
    print(json.dumps(run(json.loads(sys.argv[1]))))
