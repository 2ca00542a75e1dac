"""Runs several scenarios under one Keras backend, in one process: the
scenario chain of conftest.py (`scenario_result`) starts one per backend,
so that each framework is imported once, not once per test module.

    KERAS_BACKEND=jax python tests/scenario_runner.py \
        '[["backend_scenarios.py", "beta", []],
          ["variant_contract_scenarios.py", "contract", ["DIR"]]]'

prints one JSON object, `{scenario name: what it returned}`, and under
`"_seconds"` each scenario's `[wall, CPU]` seconds and the process's
(`"process"`, its imports included); a scenario that raised returns
`{"error": its traceback}` and the others still run.
Keras's global state (names, the dtype policy) is reset before each, as
in a fresh process.
"""

import importlib
import json
import pathlib
import sys
import time
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
    found, seconds = {}, {}
    for script, name, args in specs:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            _reset()
            module = importlib.import_module(script.removesuffix(".py"))
            found[name] = getattr(module, name)(*args)
        except Exception:  # reported to the tests that need this scenario
            found[name] = {"error": traceback.format_exc()[-4000:]}
        seconds[name] = [
            round(time.perf_counter() - wall, 1),
            round(time.process_time() - cpu, 1),
        ]
    seconds["process"] = [None, round(time.process_time(), 1)]
    found["_seconds"] = seconds
    return found


if __name__ == "__main__":
    print(json.dumps(run(json.loads(sys.argv[1]))))
