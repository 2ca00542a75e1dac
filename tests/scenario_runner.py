"""Runs several scenarios under one Keras backend, in one process: the
shared fixture of conftest.py (`shared_runs`) starts one per backend, so
that each framework is imported once, not once per test module.

    KERAS_BACKEND=jax python tests/scenario_runner.py \
        backend_scenarios.py:beta pairing_backend_scenarios.py:pairings

prints one JSON object, `{scenario name: what it returned}`.
"""

import importlib
import json
import pathlib
import sys

HERE = pathlib.Path(__file__).parent


def run(specs):
    """`{name: module.name()}` for each `module.py:name` in `specs`."""
    sys.path.insert(0, str(HERE))
    found = {}
    for spec in specs:
        script, name = spec.split(":")
        module = importlib.import_module(script.removesuffix(".py"))
        found[name] = getattr(module, name)()
    return found


if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1:])))
