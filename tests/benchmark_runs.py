"""The `--quick` runs of benchmarks/throughput.py that its tests check, in
background processes started with the session (`conftest.background_run`)
so that they overlap the tests of the main process:

- TensorFlow's: the data and pairing sections, the train section and the
  family section, for benchmarks_test and benchmarks_family_test, run in
  the TensorFlow process of the examples' group `"examples:paper"`
  (`example_runs.GROUPS`: TensorFlow imported once for them all);
- `"benchmarks:jax+torch"`: the train and anchors sections on JAX, then on
  PyTorch, each in its own process with `--backend` naming it and
  `KERAS_BACKEND` another (the flag decides).

`python tests/benchmark_runs.py FOLDER` (`run_tensorflow`) runs
TensorFlow's three in this process, each writing `FOLDER/NAME.out` (what
it printed) and `FOLDER/NAME.json` (`--json`).
"""

import contextlib
import importlib.util
import json
import os
import pathlib
import subprocess
import sys

SCRIPT = pathlib.Path(__file__).parents[1] / "benchmarks" / "throughput.py"
TESTS = pathlib.Path(__file__).parent
BACKENDS = ("tensorflow", "jax", "torch")

#: TensorFlow's quick runs: `name: throughput.py arguments`.
TENSORFLOW_RUNS = {
    "table": ["--sections", "data", "pairing"],
    "tensorflow": ["--sections", "train"],
    "family": ["--sections", "family", "--variants", "cutmix,nosuch"],
}


def load_throughput():
    """benchmarks/throughput.py, loaded from its file."""
    spec = importlib.util.spec_from_file_location("throughput", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _read(folder, name):
    """`(printed text, JSON record)` of the run `name` in `folder`."""
    return (
        (folder / f"{name}.out").read_text(),
        json.loads((folder / f"{name}.json").read_text()),
    )


def _run(command, env, out):
    """Runs `command`, its stdout to the file `out`; fails with its stderr."""
    with open(out, "w") as file:
        done = subprocess.run(
            command, env=env, stdout=file, stderr=subprocess.PIPE, text=True
        )
    assert done.returncode == 0, done.stderr[-3000:]


def _jax_and_torch(tmp_path_factory):
    folder = tmp_path_factory.mktemp("throughput_jax_torch")
    for backend in ("jax", "torch"):
        other = BACKENDS[(BACKENDS.index(backend) + 1) % len(BACKENDS)]
        env = dict(os.environ, KERAS_BACKEND=other, TF_CPP_MIN_LOG_LEVEL="3")
        command = [sys.executable, str(SCRIPT), "--backend", backend]
        command += ["--quick", "--json", str(folder / f"{backend}.json")]
        if backend == "torch":
            command += ["--profile"]
        _run(command, env, folder / f"{backend}.out")
    return {backend: _read(folder, backend) for backend in ("jax", "torch")}


def _modules(*names):
    return [TESTS / f"{name}.py" for name in names]


def tensorflow_runs():
    """The module-scoped fixture of TensorFlow's runs: `{name: (printed
    text, JSON record)}` (names of `TENSORFLOW_RUNS`)."""
    from example_runs import quick_fixture

    return quick_fixture("examples:paper", "benchmarks_tensorflow")


def jax_and_torch_runs():
    """The module-scoped fixture of JAX's and PyTorch's runs: `{backend:
    (printed text, JSON record)}`."""
    from conftest import background_run

    return background_run(
        "benchmarks:jax+torch",
        _jax_and_torch,
        cost=80,
        modules=_modules("benchmarks_test"),
    )


def run_tensorflow(folder):
    """Runs `TENSORFLOW_RUNS` in this process, each writing into `folder`;
    returns `{name: (printed text, JSON record)}`."""
    folder = pathlib.Path(folder)
    throughput = load_throughput()
    for name, argv in TENSORFLOW_RUNS.items():
        argv = ["--quick", *argv, "--json", str(folder / f"{name}.json")]
        with open(folder / f"{name}.out", "w") as out:
            with contextlib.redirect_stdout(out):
                throughput.main(argv)
    return {name: _read(folder, name) for name in TENSORFLOW_RUNS}


if __name__ == "__main__":
    run_tensorflow(*sys.argv[1:])
