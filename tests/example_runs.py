"""The examples' `--quick` runs, shared by their tests.

Checks on each run (`quick_run`):

- `examples/figures/` holds the figures the docs show: a `--quick` run
  writes its figures elsewhere (`examples/output/quick/`), never over them;
- no `fit` on a `tf.data` pipeline warns that `shuffle=True` is ignored.

The runs (`RUNS`) go in a few background processes (`GROUPS`, each
importing TensorFlow once for several runs), started with the session
(`conftest.background_run`), so that they overlap the tests of the main
process; `python tests/example_runs.py '["cifar", ...]' FOLDER` runs some
in this process. Each run's `--quick` figures go to its own folder
(`command_line.OUTPUT_DIR` under FOLDER): the tests that remove them
never remove another run's.
"""

import contextlib
import gc
import hashlib
import importlib.util
import io
import json
import os
import pathlib
import pickle
import resource
import shutil
import subprocess
import sys
import time
import traceback
import warnings

FIGURES = pathlib.Path(__file__).parents[1] / "examples" / "figures"


def snapshot(directory=FIGURES):
    """`{file name: (sha256, mtime in ns)}` of every file in `directory`."""
    return {
        path.name: (
            hashlib.sha256(path.read_bytes()).hexdigest(),
            path.stat().st_mtime_ns,
        )
        for path in sorted(directory.iterdir())
        if path.is_file()
    }


@contextlib.contextmanager
def quick_run():
    """Fails if the block adds, removes or rewrites a file in FIGURES, or
    if Keras warns that `shuffle=True` is ignored on a dataset."""
    before = snapshot()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    assert snapshot() == before, "a run wrote into examples/figures/"
    shuffle = [w for w in caught if "`shuffle=True` was passed" in str(w)]
    assert not shuffle, shuffle[0].message


def check_and_remove_quick_figures(paths, names):
    """The quick run saved `names`, outside FIGURES; removes their folder."""
    paths = [pathlib.Path(p) for p in paths]
    assert sorted(p.name for p in paths) == sorted(names)
    for path in paths:
        assert path.stat().st_size > 0
        assert path.parent != FIGURES
    shutil.rmtree(paths[0].parent)


# --- the quick runs, in background processes ----------------------------------

EXAMPLES = pathlib.Path(__file__).parents[1] / "examples"


def load_example(name):
    """The example `examples/{name}.py`, loaded from its file (its
    neighbours, `command_line`, `tables`..., importable)."""
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_main(name, *argv, mock_data=False):
    """`{"result": main(argv), "out": what it printed}` of example `name`
    in a `quick_run` (on `tfds.testing.mock_data` with `mock_data`)."""
    example = load_example(name)
    printed = io.StringIO()
    with contextlib.ExitStack() as stack:
        stack.enter_context(quick_run())
        if mock_data:
            import tensorflow_datasets as tfds

            stack.enter_context(tfds.testing.mock_data(num_examples=64))
        stack.enter_context(contextlib.redirect_stdout(printed))
        result = example.main(list(argv))
    return {"result": result, "out": printed.getvalue()}


def _imagenet(folder):
    import keras

    run = run_main(
        "imagenet",
        "--quick",
        "--mixed-precision",
        "--cutmix-alpha",
        "1.0",
        "--label-smoothing",
        "0.1",
        "--figures",
        str(folder),
        mock_data=True,
    )
    run.update(folder=str(folder), policy=keras.config.dtype_policy().name)
    return run


def _family(folder):
    import plots

    run = run_main("family", "--quick", "--variants", "mixup,cutmix,nosuch")
    run["saved"] = plots.load_results(run["result"]["figures"][0])
    run["replot"] = run_main("family", "--quick", "--replot")["result"]
    return run


def _quickstart(folder):
    """Two runs of one loaded example: `[(errors, printed text)]`."""
    example = load_example("quickstart")
    runs = []
    for _ in range(2):
        printed = io.StringIO()
        with quick_run(), contextlib.redirect_stdout(printed):
            runs.append((example.main(["--quick"]), printed.getvalue()))
    return runs


def _start_up_logs(folder):
    """What `import tensorflow` after `command_line`'s parser prints, with
    `TF_CPP_MIN_LOG_LEVEL` unset: `(stdout, stderr)`."""
    code = (
        "import sys; sys.path.insert(0, '.'); import command_line; "
        "command_line.make_parser('x', epochs=1, alpha=0.2, batch_size=2)"
        ".parse_args([]); import tensorflow as tf; print(tf.constant(2) + 1)"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=EXAMPLES,
        env=env,
        check=True,
    )
    return done.stdout, done.stderr


#: The quick runs, by name: each a function of a fresh folder.
RUNS = {
    "beta_distribution": lambda _: run_main("beta_distribution", "--quick"),
    "cutmix_digits": lambda _: run_main("cutmix_digits", "--quick"),
    "uci_tabular": lambda _: run_main("uci_tabular", "--quick"),
    "corrupted_labels": lambda _: run_main("corrupted_labels", "--quick"),
    "adversarial": lambda _: run_main("adversarial", "--quick"),
    "cifar": lambda _: run_main(
        "cifar", "--quick", "--distribute", mock_data=True
    ),
    "imagenet": _imagenet,
    "ablation": lambda _: run_main("ablation", "--quick"),
    "speech_commands": lambda _: run_main(
        "speech_commands", "--quick", mock_data=True
    ),
    "family": _family,
    "spoken_words": lambda _: run_main(
        "spoken_words", "--quick", "--mask-rule", "union"
    ),
    "tokens": lambda _: run_main("tokens", "--quick", "--quiet"),
    "calibration": lambda _: run_main("calibration", "--quick"),
    "regression": lambda _: run_main("regression", "--quick"),
    "gan_toy": lambda _: run_main("gan_toy", "--quick"),
    "quickstart": _quickstart,
    "start_up_logs": _start_up_logs,
}


def _docs_pages(folder):
    """Every docs page's Python blocks (`docs_test.run_pages`)."""
    import docs_test

    folder.mkdir(parents=True, exist_ok=True)
    return docs_test.run_pages(folder)


def _benchmarks(folder):
    """TensorFlow's `--quick` runs of benchmarks/throughput.py
    (`benchmark_runs.TENSORFLOW_RUNS`)."""
    import benchmark_runs

    folder.mkdir(parents=True, exist_ok=True)
    return benchmark_runs.run_tensorflow(folder)


RUNS.update(docs_pages=_docs_pages, benchmarks_tensorflow=_benchmarks)

#: The background processes, each running several quick runs (TensorFlow
#: imported once for them, about 14 s of CPU a process): `key: ({run:
#: the test module that reads it}, cost)`, the cost the group's CPU
#: seconds (measured at session 5's end, as each ran). A group runs only
#: the runs of the selected test modules. The docs pages' blocks and
#: TensorFlow's benchmark runs share these processes (session 6: two
#: processes, two imports fewer).
GROUPS = {
    "examples:images": (
        dict.fromkeys(
            [
                "start_up_logs",
                "beta_distribution",
                "cutmix_digits",
                "uci_tabular",
                "corrupted_labels",
                "adversarial",
                "cifar",
                "imagenet",
            ],
            "examples_test",
        ),
        105,
    ),
    "examples:paper": (
        {
            "ablation": "examples_paper_test",
            "speech_commands": "examples_paper_test",
            "family": "examples_family_test",
            "spoken_words": "examples_spoken_words_test",
            "benchmarks_tensorflow": "benchmarks_test",
        },
        160,
    ),
    "examples:others": (
        {
            "tokens": "examples_tokens_test",
            "calibration": "examples_variants_test",
            "regression": "examples_variants_test",
            "gan_toy": "examples_gan_toy_test",
            "quickstart": "quickstart_test",
            "docs_pages": "docs_test",
        },
        170,
    ),
}
#: Runs that another test module reads too: `{run: [test modules]}`.
ALSO = {"benchmarks_tensorflow": ["benchmarks_family_test"]}


def _cpu_seconds():
    """CPU seconds of this process and its finished children."""
    return sum(
        usage.ru_utime + usage.ru_stime
        for usage in map(
            resource.getrusage,
            (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN),
        )
    )


def _run_group(key):
    def run(tmp_path_factory):
        from conftest import BACKGROUND, run_scenario

        folder = tmp_path_factory.mktemp(key.replace(":", "_"))
        names = [
            name
            for name in GROUPS[key][0]
            if set(map(_file, _readers(name))) & BACKGROUND.selected
        ]
        found = run_scenario(
            "tensorflow", __file__, json.dumps(names), folder, timeout=1800
        )
        with open(found["pickle"], "rb") as file:
            return pickle.load(file)

    return run


def quick_results(key):
    """The module-scoped fixture of the background group `key`: `{run
    name: what it returned}`; a run that raised fails the tests that read
    it (`result`)."""
    from conftest import background_run

    runs, cost = GROUPS[key]
    files = {_file(m) for name in runs for m in _readers(name)}
    return background_run(key, _run_group(key), cost=cost, modules=files)


def quick_fixture(key, name):
    """A module-scoped fixture: what quick run `name` of the background
    group `key` returned (its error fails the tests that use it)."""
    import pytest
    from conftest import BACKGROUND

    quick_results(key)  # declares the group's run

    @pytest.fixture(scope="module")
    def fixture(tmp_path_factory):
        return quick_value(BACKGROUND.result(key, tmp_path_factory), name)

    return fixture


def _readers(name):
    """The test modules that read quick run `name`."""
    group = next(runs for runs, _ in GROUPS.values() if name in runs)
    return [group[name], *ALSO.get(name, [])]


def _file(module):
    return str((pathlib.Path(__file__).parent / f"{module}.py").resolve())


def quick_value(results, name):
    """What quick run `name` returned; its error, if it raised."""
    found = results[name]
    if "error" in found:
        raise AssertionError(f"quick run {name!r} failed:\n{found['error']}")
    return found["value"]


def _freeze_imports():
    """Imports what every run uses (TensorFlow, Keras, TFP, keras_mixup)
    and moves every object then alive into the collector's permanent
    generation (`gc.freeze`): a full collection, such as each docs page's
    `clear_session`, then scans only what the runs made, not the half a
    million objects of the imports."""
    import keras
    import tensorflow_probability  # noqa: F401

    import keras_mixup  # noqa: F401

    keras.ops.zeros(())  # loads TensorFlow's devices
    gc.freeze()


def _main(names, folder):
    """Runs the quick runs `names` (JSON) in this process, the figures of
    each under `folder/NAME` (`command_line.OUTPUT_DIR`), and prints
    `{"pickle": path}` of `{name: {"value": ...} or {"error": ...}}`,
    with `"_seconds"`: each run's `[wall, CPU]` seconds and the process's
    (`"process"`, the imports included), as `scenario_runner.py` gives
    them (the terminal summary prints them)."""
    folder = pathlib.Path(folder)
    sys.path.insert(0, str(EXAMPLES))
    import command_line

    _freeze_imports()
    found, seconds = {}, {}
    for name in json.loads(names):
        command_line.OUTPUT_DIR = str(folder / name / "output")
        start, wall = _cpu_seconds(), time.perf_counter()
        try:
            found[name] = {"value": RUNS[name](folder / name)}
        except BaseException:
            found[name] = {"error": traceback.format_exc()}
        found[name]["cpu"] = _cpu_seconds() - start
        seconds[name] = [
            round(time.perf_counter() - wall, 1),
            round(found[name]["cpu"], 1),
        ]
    seconds["process"] = [None, round(_cpu_seconds(), 1)]
    found["_seconds"] = seconds
    path = folder / "results.pickle"
    path.write_bytes(pickle.dumps(found))
    print(json.dumps({"pickle": str(path)}))


if __name__ == "__main__":
    _main(*sys.argv[1:])
