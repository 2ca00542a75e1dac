"""Shared test set-up and helpers.

Set-up: TensorFlow backend, quiet logs, clean global state. Helpers, the
one copy of each, imported by the tests as `from conftest import ...`:

- `decode_identity_rows`: lam and partners read back from mixed identity
  rows (example `k` is row `k` of an identity matrix);
- `chi_square_p_value` and `EDGES`: goodness of fit of lam draws;
- `nearest_sets`: every row's k nearest neighbours, by brute force;
- `blobs`: a small, separable classification problem;
- `Recorder`: an identity layer that keeps every batch it receives;
- `index_images` and `decode_cuts`: images filled with their own index,
  and what a CutMix did to them (partners, boxes, kept fractions);
- `finish_processes`: waits for subprocesses, kills them all on a failure;
- `run_scenario`: runs a scenario script under one Keras backend (with
  its `THREADS`: one intra-op thread for PyTorch);
- `background_run`: declares a test module's scenario subprocess, which
  starts in the background when the session starts
  (see `Background`);
- `scenario_result`, `chain_results`, `shared_result`: what a scenario of
  the backend modules returned (`CHAIN`: they share few processes).
"""

import concurrent.futures
import json
import os
import pathlib
import subprocess
import sys
import threading
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
#: XLA (TensorFlow's `jit_compile`, every JAX `jit`) compiles without
#: LLVM's optimisations in the tests and every process they start: the
#: same XLA programs in far less CPU time (the JAX contract scenario 143 s
#: against 200-220 s), which changes the timings, never checked, and
#: nothing the tests check. XLA's CPU backend also emits its fusions with
#: the older elemental emitters (`--xla_cpu_use_fusion_emitters=false`),
#: cheaper to compile: the JAX contract 55 s of CPU against 75 s, the
#: TensorFlow one 35 s against 38 s (session 9). The benchmarks measure
#: the default settings.
QUICK_XLA = (
    "--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false"
)
os.environ.setdefault("XLA_FLAGS", QUICK_XLA)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from scipy import stats  # noqa: E402


@pytest.fixture(autouse=True)
def _reset_keras_state():
    """Every test starts and ends with the default float32 policy."""
    keras.config.set_dtype_policy("float32")
    yield
    keras.config.set_dtype_policy("float32")


# --- identity rows ----------------------------------------------------------


def decode_identity_rows(x, ids, atol=1e-6, *, permutation=True):
    """Checks that `x` mixes the identity rows `ids` and decodes it.

    Example `k` of a test set is row `k` of an identity matrix (its "id" is
    the column of its 1). After mixing, the row at batch position `r` must
    be `lam_r * e_{ids[r]} + (1 - lam_r) * e_{ids[p_r]}` with `p` a
    permutation of the batch positions: this checks exactly that, so no
    example is lost, duplicated, reordered or taken from another batch.

    Args:
        x: the mixed rows, shape `[B, N]` (N >= every id).
        ids: the id of the example expected at each batch position, `[B]`.
        atol: tolerance for the float comparisons.
        permutation: whether the partners must be a permutation (the
            nearest-neighbour pairings need not give one).

    Returns:
        `(lam, partner)`: the weight of each row's own example (>= 0) and
        the batch position of its partner (`r` itself when the row shows no
        other example): a permutation of `range(B)` where every row shows
        its partner.
    """
    x = np.asarray(x, np.float64)
    ids = np.asarray(ids)
    size = len(ids)
    assert x.shape[0] == size, f"batch of {x.shape[0]} rows, {size} ids"
    assert len(set(ids.tolist())) == size, "ids must be distinct"
    assert np.all(np.isfinite(x)), "mixing created a NaN or inf"
    assert x.min() >= -atol, f"negative weight {x.min()}"
    np.testing.assert_allclose(x.sum(1), 1.0, atol=atol)
    others = np.delete(x, ids, axis=1)
    if others.size:
        assert others.max() <= atol, "a row holds an example of another batch"
    weights = x[:, ids]
    lam = np.diag(weights).copy()
    off = weights - np.diag(lam)
    assert ((off > atol).sum(1) <= 1).all(), "a row mixes three examples"
    # Entries of examples a row does not mix are exactly 0: a partner
    # weight under atol (lam within float rounding of 1) still shows.
    moved = off.max(1) > 0
    partner = np.where(moved, off.argmax(1), np.arange(size))
    # A permutation: no two rows show the same partner. (A row with lam = 1
    # exactly, as float32 rounds for small alpha, hides its partner.)
    shown = partner[moved].tolist()
    assert not permutation or len(set(shown)) == len(shown), (
        f"partners {partner.tolist()} are not a permutation"
    )
    np.testing.assert_allclose(
        off[np.arange(size), partner][moved], 1 - lam[moved], atol=atol
    )
    assert (lam >= 0).all() and (lam <= 1 + atol).all()
    return lam, partner


def mixed_lams(x, ids=None, atol=1e-6):
    """The lam of every row of `x` (identity rows `ids`, by default
    `range(B)`) that shows a partner: a row paired with itself, or with
    lam = 1 exactly, shows no lam."""
    ids = np.arange(len(x)) if ids is None else ids
    lam, partner = decode_identity_rows(x, ids, atol)
    return lam[partner != np.arange(len(partner))]


# --- statistics -------------------------------------------------------------

# Bin edges stay 1e-6 away from 0 and 1: float32 rounds draws within ~1e-7
# of the ends to exactly 0 or 1, which distorts a KS test on lam itself.
EDGES = np.array(
    [0, 1e-6, 0.01, 0.1, 0.3, 0.45, 0.55, 0.7, 0.9, 0.99, 1 - 1e-6, 1.0]
)


def chi_square_p_value(samples, distribution, edges=EDGES, min_expected=5):
    """Chi-square goodness of fit of samples to a scipy distribution on
    fixed bins, merging bins with fewer than `min_expected` expected."""
    cdf = distribution.cdf(edges)
    cdf[0], cdf[-1] = 0.0, 1.0
    expected = np.diff(cdf) * len(samples)
    observed, _ = np.histogram(samples, bins=edges)
    # The last histogram bin is closed on the right, so lam == 1 counts.
    merged_obs, merged_exp, obs_acc, exp_acc = [], [], 0, 0.0
    for obs, exp in zip(observed, expected, strict=True):
        obs_acc, exp_acc = obs_acc + obs, exp_acc + exp
        if exp_acc >= min_expected:
            merged_obs.append(obs_acc)
            merged_exp.append(exp_acc)
            obs_acc, exp_acc = 0, 0.0
    merged_obs[-1] += obs_acc
    merged_exp[-1] += exp_acc
    assert len(merged_obs) >= 3, "too few bins for a meaningful test"
    return stats.chisquare(merged_obs, merged_exp).pvalue


def nearest_sets(points, k):
    """The k nearest other rows of every row of `points` `[N, D]`, by brute
    force (ties to the lower index)."""
    points = np.asarray(points, "float64")
    distances = ((points[:, None] - points[None]) ** 2).sum(-1)
    np.fill_diagonal(distances, np.inf)
    return [set(np.argsort(row, kind="stable")[:k]) for row in distances]


# --- models -----------------------------------------------------------------


def blobs(num_classes=3, per_class=64, features=8, seed=0):
    """Gaussian blobs, one per class, shuffled: `(x float32, y int ids)`."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, size=(num_classes, features))
    y = np.repeat(np.arange(num_classes), per_class)
    x = centers[y] + rng.normal(size=(len(y), features))
    order = rng.permutation(len(y))
    return x[order].astype("float32"), y[order]


class Recorder(keras.layers.Layer):
    """The identity; appends every batch it receives, as a NumPy array, to
    `seen` (a list, its own by default), eagerly or inside a traced step.

    Args:
        seen: the list to append to. Defaults to a new list.
        training_only: record only the batches seen while training.
            Defaults to `False`.

    `traces` counts the calls in training mode: in a traced step, how often
    the step was traced.
    """

    def __init__(self, seen=None, training_only=False, **kwargs):
        super().__init__(**kwargs)
        # Set past Keras's attribute tracking, which would copy the list.
        object.__setattr__(self, "seen", [] if seen is None else seen)
        self.training_only = training_only
        self.traces = 0

    def call(self, x, training=None):
        if training:
            self.traces += 1
        elif self.training_only:
            return x

        def record(tensor):
            self.seen.append(tensor.numpy())
            return []

        with tf.control_dependencies([tf.py_function(record, [x], [])]):
            return tf.identity(x)


def decode_blends(mixed, x, others=None, *, paired=False, atol=1e-4):
    """Reads lam and partners back from rows blended from `x`.

    Row `i` of `mixed` must be `lam_i * x[i] + (1 - lam_i) * others[p_i]`
    for some row `p_i` of `others` (by default `x` itself: partners from the
    same batch; with `paired`, `p_i = i`) and some `lam_i` in [0, 1]; this
    checks that, row by row, to within `atol`.

    Returns:
        `(lam, partner)`: each row's weight of `x[i]`, and the row of
        `others` it is blended with (the closest fit when `x[i]` and
        several rows of `others` explain the row equally well).
    """
    mixed, x = np.asarray(mixed, np.float64), np.asarray(x, np.float64)
    others = x if others is None else np.asarray(others, np.float64)
    assert mixed.shape == x.shape, (mixed.shape, x.shape)
    mixed, x = mixed.reshape(len(x), -1), x.reshape(len(x), -1)
    others = others.reshape(len(others), -1)
    diff = x[:, None, :] - others[None, :, :]  # [B, P, F]
    rest = mixed[:, None, :] - others[None, :, :]
    norm = (diff**2).sum(-1)
    safe = np.where(norm > 0, norm, 1.0)
    lam = np.where(norm > 0, (rest * diff).sum(-1) / safe, 1.0)
    residual = np.abs(rest - lam[..., None] * diff).max(-1)
    if paired:
        residual[~np.eye(len(x), len(others), dtype=bool)] = np.inf
    partner = residual.argmin(1)
    rows = np.arange(len(x))
    worst = residual[rows, partner].max()
    assert worst <= atol, f"a row is no blend of two rows (off by {worst})"
    lam = lam[rows, partner]
    assert np.all((lam >= -atol) & (lam <= 1 + atol)), lam
    return np.clip(lam, 0, 1), partner


# --- CutMix ------------------------------------------------------------------


#: The options CutMix added to the engine, declared last in `OPTIONS`.
CUTMIX_OPTION_NAMES = (
    "cutmix_alpha",
    "switch_prob",
    "cutmix_minmax",
    "correct_lam",
    "data_format",
    "axes",
    "bounding_box_format",
    "min_box_visibility",
)


def index_images(batch, height=16, width=16, channels=1, dtype="float32"):
    """`[batch, height, width, channels]` images, image `i` filled with `i`."""
    shape = (batch, height, width, channels)
    return (np.arange(batch).reshape(-1, 1, 1, 1) * np.ones(shape)).astype(
        dtype
    )


def decode_cuts(images, axes=(1, 2), own=None):
    """Reads a CutMix back from index images (image `i` filled with `i`).

    Checks that every image holds its own index outside one axis-aligned
    box (along `axes`) and one other index, the same in every channel,
    inside it.

    `own` gives each image's index (by default its position).

    Returns:
        `(kept, partner, boxes)`: the fraction of each image's pixels that
        keep its index, the index seen in the box (the image's own when
        nothing was pasted), and each box as `(lows, highs)` along `axes`
        (`None` when nothing was pasted).
    """
    images = np.asarray(images, np.float64)
    kept, partners, boxes = [], [], []
    own = np.arange(len(images)) if own is None else np.asarray(own)
    for i, image in zip(own, images, strict=True):
        values = np.unique(image)
        assert np.array_equal(values, np.round(values)), values
        assert len(values) <= 2, f"image {i} holds {values}"
        other = image != i
        kept.append(1.0 - other.mean())
        if not other.any():
            partners.append(i)
            boxes.append(None)
            continue
        partners.append(int(image[other].flat[0]))
        spans = [
            np.flatnonzero(
                other.any(
                    axis=tuple(
                        a - 1 for a in range(1, images.ndim) if a != axis
                    )
                )
            )
            for axis in axes
        ]
        lows = [int(s[0]) for s in spans]
        highs = [int(s[-1]) + 1 for s in spans]
        box = np.zeros(image.shape, bool)
        index = [slice(None)] * image.ndim
        for axis, low, high in zip(axes, lows, highs, strict=True):
            index[axis - 1] = slice(low, high)
        box[tuple(index)] = True
        np.testing.assert_array_equal(other, box, f"image {i}: not a box")
        boxes.append((lows, highs))
    return np.array(kept), np.array(partners), boxes


# --- subprocesses -----------------------------------------------------------


def finish_processes(processes, timeout):
    """Waits for every process; kills them all if one fails or times out
    (a hung run fails, never hangs), and asserts with their stderr tails."""
    errors = []
    try:
        for process in processes:
            try:
                _, stderr = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                errors.append(f"pid {process.pid} timed out after {timeout}s")
                break
            if process.returncode != 0:
                errors.append(stderr[-3000:])
                break
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert not errors, "\n".join(errors)


#: The Keras backends, each tested in its own process.
BACKENDS = ("tensorflow", "jax", "torch")


#: The thread settings of the scenario processes, by backend, unless the
#: environment sets them: PyTorch's intra-op pool of one thread (two
#: processes share the 2 cores; its workers' spin-waits cost CPU: the
#: PyTorch in_model run took 26.5 s of CPU against 32.3 s, and no more
#: wall time, beside another run). One intra-op thread for TensorFlow,
#: XLA and JAX (`TF_NUM_INTRAOP_THREADS=1`, `--xla_cpu_multi_thread_eigen
#: =false intra_op_parallelism_threads=1`) saved nothing and cost wall
#: time: the TF contract 114.6 s of CPU against 113.7 s, JAX's scenarios
#: 209 s against 198 s (session 6, one pair each at load 3-7; the table
#: in docs/guides/performance.md, "The test suite's background processes").
THREADS = {"torch": {"OMP_NUM_THREADS": "1"}}


def run_scenario(backend, script, name, *args, timeout=600, env=None):
    """Runs `python script name *args` with `KERAS_BACKEND=backend` (Keras
    picks its backend once, at import), the backend's `THREADS` and the
    variables of `env` set, and returns the JSON object the scenario
    prints last."""
    env = {
        **THREADS.get(backend, {}),
        **os.environ,
        "KERAS_BACKEND": backend,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        **(env or {}),
    }
    root = str(pathlib.Path(__file__).parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(
        [root, *filter(None, [env.get("PYTHONPATH")])]
    )
    process = subprocess.Popen(
        [sys.executable, str(script), name, *map(str, args)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _LIVE.add(process)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:  # timed out, or the session stopped
            process.kill()
            process.communicate()
        _LIVE.discard(process)
    assert process.returncode == 0, stderr[-3000:]
    return json.loads(stdout.strip().splitlines()[-1])


#: The scenario processes running now (`Background.stop` ends them).
_LIVE = set()


# --- scenario runs in the background ------------------------------------------


class Background:
    """The suite's scenario subprocesses, run in the background.

    A test module declares each of its runs with `background_run` (a
    function of a folder factory that returns what the tests check); when
    the session starts, the runs of every module with a selected test are
    queued, longest first (the wall seconds of the last session, kept in
    pytest's cache, else the declared cost), `WORKERS` at a time, while
    the tests of this process run. A test's fixture waits for its run's
    result; while it waits, this process runs the queued runs itself, so
    that both cores stay busy to the end. A run that failed fails each
    test that needs it, with its error.
    """

    #: Runs at once besides this process, which runs tests (and, once its
    #: tests wait, queued runs): one per core but its own.
    WORKERS = max(
        1,
        (
            len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")  # not on macOS
            else os.cpu_count() or 2
        )
        - 1,
    )

    def __init__(self):
        self.runs = {}  # key: (module files, cost, function)
        self.futures = {}
        self.queue = []  # the keys of the selected runs, longest first
        self.claimed = set()
        self.selected = frozenset()
        self.pool = None
        self.lock = threading.Lock()
        self.factory = None
        self.seconds = {}  # key: wall seconds of the finished run

    def add(self, key, modules, cost, function):
        """Declares the run `key` of the test modules `modules` (the
        resolved paths of their files)."""
        if key in self.runs and self.runs[key][0] != frozenset(modules):
            raise ValueError(f"Two modules declare the run {key!r}.")
        self.runs[key] = (frozenset(modules), cost, function)

    def start(self, modules, tmp_path_factory, measured=None):
        """Queues the runs of the test modules `modules` (their files),
        ordered by `measured` (`{key: seconds}`) where it has the key."""
        measured = measured or {}
        self.selected = frozenset(modules)
        self.factory = _LockedFactory(tmp_path_factory, self.lock)
        self.queue = [k for k, run in self.runs.items() if run[0] & modules]
        self.queue.sort(key=lambda k: -measured.get(k, self.runs[k][1]))
        self.pool = concurrent.futures.ThreadPoolExecutor(self.WORKERS)
        for key in self.queue:
            self.futures[key] = concurrent.futures.Future()
            self.pool.submit(self._run, key)

    def _run(self, key):
        """Runs `key` unless another thread claimed it first."""
        with self.lock:
            if key in self.claimed:
                return
            self.claimed.add(key)
        future = self.futures[key]
        start = time.perf_counter()
        try:
            future.set_result(self.runs[key][2](self.factory))
        except BaseException as error:  # kept for every test that needs it
            future.set_exception(error)
        self.seconds[key] = time.perf_counter() - start

    def result(self, key, tmp_path_factory):
        """The result of run `key`; until it is done, runs here the queued
        runs (`key` first)."""
        if self.factory is None:
            self.factory = _LockedFactory(tmp_path_factory, self.lock)
        with self.lock:
            self.futures.setdefault(key, concurrent.futures.Future())
        for other in [key, *self.queue]:
            if self.futures[key].done():
                break
            self._run(other)
        return self.futures[key].result()

    def whole_runs(self):
        """`{key: wall seconds}` of the runs that finished, with the
        scenarios of all their modules (the costs worth keeping)."""
        return {
            key: seconds
            for key, seconds in self.seconds.items()
            if not self.futures[key].exception()
            and self.runs[key][0] <= self.selected
        }

    def report(self):
        """Lines for the terminal summary: each finished run's wall time
        and, for the scenario chains, each scenario's `[wall, CPU]`
        seconds (`scenario_runner.py`'s `"_seconds"`)."""
        lines = []
        for key, seconds in sorted(self.seconds.items(), key=lambda i: -i[1]):
            lines.append(f"{seconds:7.1f}s  {key}")
            future = self.futures[key]
            found = None if future.exception() else future.result()
            chains = found if key == "in_turn" else {"": found}
            for backend, chain in (chains or {}).items():
                timing = isinstance(chain, dict) and chain.get("_seconds")
                for name, (wall, cpu) in (timing or {}).items():
                    wall = "" if wall is None else f"{wall:.1f}s wall, "
                    lines.append(f"{'':10}{backend} {name}: {wall}{cpu}s CPU")
        return lines

    def stop(self):
        """Starts nothing more and ends the runs still going (the session
        stopped early: `-x`, Ctrl-C)."""
        if self.pool is not None:
            with self.lock:
                self.claimed.update(self.futures)  # nothing new starts
            for process in list(_LIVE):
                process.kill()
            self.pool.shutdown(wait=True)


class _LockedFactory:
    """`tmp_path_factory.mktemp`, safe to call from several threads."""

    def __init__(self, factory, lock):
        self.factory, self.lock = factory, lock

    def mktemp(self, name):
        with self.lock:
            return self.factory.mktemp(name)


BACKGROUND = Background()


def _resolved(path):
    return str(pathlib.Path(path).resolve())


def background_run(key, function, *, cost, modules=None):
    """Declares the run `key` of the calling test module: `function(
    tmp_path_factory)` (only its `mktemp`) returns what its tests check;
    `cost`, its rough duration in seconds, orders the runs. `modules`, the
    files of the test modules that share the run (each declares it alike),
    defaults to the calling module's. Returns a module-scoped fixture
    giving that result (assign it to the fixture's name in the module)."""
    if modules is None:
        modules = [sys._getframe(1).f_globals["__file__"]]
    BACKGROUND.add(key, [_resolved(m) for m in modules], cost, function)

    @pytest.fixture(scope="module")
    def fixture(tmp_path_factory):
        return BACKGROUND.result(key, tmp_path_factory)

    return fixture


def pytest_collection_modifyitems(session, config, items):
    """The tests of modules with background runs go last (in their
    order), so that the other tests run while the runs work."""
    waiting = set().union(*(run[0] for run in BACKGROUND.runs.values()))
    items.sort(key=lambda item: _resolved(item.path) in waiting)


def pytest_terminal_summary(terminalreporter):
    """How long each background run took (`--durations` lists only the
    tests, which wait for these runs in their fixtures)."""
    lines = BACKGROUND.report()
    if lines:
        terminalreporter.section("background runs")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session", autouse=True)
def _background_runs(request, tmp_path_factory):
    """Starts the background runs of the selected test modules."""
    modules = {_resolved(item.path) for item in request.session.items}
    cache = getattr(request.config, "cache", None)
    measured = cache.get(_SECONDS, {}) if cache else {}
    BACKGROUND.start(modules, tmp_path_factory, measured)
    yield
    BACKGROUND.stop()
    if cache:
        cache.set(_SECONDS, {**measured, **BACKGROUND.whole_runs()})


#: Where pytest's cache keeps each background run's wall seconds.
_SECONDS = "keras_mixup/background_seconds"


#: The scenarios of the backend test modules, as `(test module, script,
#: scenario, arguments)`, run by `scenario_runner.py` in few processes
#: (each framework is imported once for all of them), in this order:
#: those that load nothing in a few processes per backend (one a part of
#: `PARTS`), all independent; those that load what the previous backend
#: saved (argument `"l"`: its folder, `-` for the first; `"s"`: this
#: backend's) or are marked `"t"` (no argument) in one process per
#: backend, the backends in turn (keep them few and short: they run one
#: after another; under the backends of `IN_TURN_WITH`, in the process of
#: a part). The scenarios that check that JAX and PyTorch never import
#: TensorFlow run before any that imports it in their process.
CHAIN = (
    ("pairing_backends", "pairing_backend_scenarios.py", "pairings", ""),
    (
        "blending_backends",
        "blending_backend_scenarios.py",
        "blending_scenario",
        "",
    ),
    ("backends", "backend_scenarios.py", "beta", ""),
    ("regmixup_backends", "regmixup_backend_scenarios.py", "step", ""),
    ("variants_contract", "variant_contract_scenarios.py", "contract", "s"),
    ("gan_backends", "gan_backend_scenarios.py", "gan_training", "t"),
    (
        "models_backends",
        "models_backend_scenarios.py",
        "in_model_saving",
        "ls",
    ),
    ("gan_backends", "gan_backend_scenarios.py", "gan_saving", "ls"),
    (
        "sequence_masks",
        "sequence_masks_scenarios.py",
        "sequence_masks",
        "",
    ),
    (
        "models_mix_loss_backends",
        "mix_loss_backend_scenarios.py",
        "mix_loss_scenario",
        "",
    ),
    (
        "resizemix",
        "variant_backend_scenarios.py",
        "resize_and_tile",
        "",
    ),
    ("fmix", "variant_backend_scenarios.py", "fmix_band", ""),
    # These import TensorFlow (tf.data): after every scenario that checks
    # JAX and PyTorch never import it.
    ("models_backends", "models_backend_scenarios.py", "in_model", "s"),
    ("cutmix", "tf_data_backend_scenarios.py", "cutmix_in_tf_data", ""),
    ("data", "tf_data_backend_scenarios.py", "mixup_in_tf_data", ""),
    ("metrics", "tf_data_backend_scenarios.py", "calibration_metric", ""),
    # Op determinism stays on in the process: last in both of TensorFlow's
    # (the in-turn one and in_model's).
    ("determinism", "determinism_test.py", "deterministic_run_1", "s"),
    ("determinism", "determinism_test.py", "deterministic_run_2", "s"),
)
RUNNER = pathlib.Path(__file__).with_name("scenario_runner.py")
#: JAX sees two CPU devices, for `DataParallel`.
TWO_DEVICES = {
    "XLA_FLAGS": f"--xla_force_host_platform_device_count=2 {QUICK_XLA}"
}


#: The scenarios that load nothing and run in a process of their own
#: under each backend, `{scenario: part}` (the longest: the parts balance
#: the background runs); the others share the part `"scenarios"`.
PARTS = {
    "contract": "contract",
    "in_model": "in_model",
    "deterministic_run_2": "in_model",
}
#: The backends whose in-turn scenarios run in the process of one of
#: their parts, `{backend: part}`: the first backend, which loads nothing
#: (the next backend's in-turn scenarios wait for that whole process),
#: and the last, whose files nothing loads (its part waits for the
#: previous backend's). That process is the backend's link of `in_turn`:
#: one process and its imports fewer for each (about 8 s of CPU).
IN_TURN_WITH = {"tensorflow": "scenarios", "torch": "scenarios"}
#: Each part's rough CPU seconds under each backend (ordering the runs
#: before pytest's cache knows their durations).
COSTS = {
    "contract": {"tensorflow": 140, "jax": 155, "torch": 65},
    "in_model": {"tensorflow": 60, "jax": 120, "torch": 80},
    "scenarios": {"tensorflow": 60, "jax": 180, "torch": 25},
    "in_turn": 230,
}


def _test_file(module):
    return _resolved(pathlib.Path(__file__).with_name(f"{module}_test.py"))


def _in_turn(entry):
    return "l" in entry[3] or "t" in entry[3]


def _part(entry):
    """The part of `CHAIN` that `entry` belongs to."""
    return "in_turn" if _in_turn(entry) else PARTS.get(entry[2], "scenarios")


def _run_key(entry, backend):
    """The background run that runs `entry` of `CHAIN` under `backend`:
    `"in_turn"` (one for all backends), or `"part:backend"`."""
    part = _part(entry)
    if part == "in_turn" or IN_TURN_WITH.get(backend) == part:
        return "in_turn"
    return f"{part}:{backend}"


def _entries(key, backend):
    """The entries of `CHAIN` that the run `key` runs under `backend`."""
    return [e for e in CHAIN if _run_key(e, backend) == key]


def _run_chain(backend, entries, previous, folder):
    """`{scenario: result}` of the selected `entries` under `backend`."""
    paths = {"l": str(previous), "s": str(folder)}
    runs = [
        [script, name, [paths[a] for a in args if a in paths]]
        for module, script, name, args in entries
        if _test_file(module) in BACKGROUND.selected
    ]
    if not runs:
        return {}
    return run_scenario(
        backend,
        RUNNER,
        json.dumps(runs),
        timeout=1800,
        env=TWO_DEVICES if backend == "jax" else None,
    )


def _alone(part, backend):
    def run(tmp_path_factory):
        folder = tmp_path_factory.mktemp(f"{part}_{backend}")
        entries = _entries(f"{part}:{backend}", backend)
        return _run_chain(backend, entries, "-", folder)

    return run


def _in_turns(tmp_path_factory):
    """`{backend: {scenario: result}}`, the backends in turn."""
    found, previous = {}, "-"
    for backend in BACKENDS:
        folder = tmp_path_factory.mktemp(f"in_turn_{backend}")
        entries = _entries("in_turn", backend)
        found[backend] = _run_chain(backend, entries, previous, folder)
        previous = folder
    return found


def _declare_chains():
    """One background run a part and backend (`in_turn`: one for all)."""
    modules = {}
    for entry in CHAIN:
        for backend in BACKENDS:
            key = _run_key(entry, backend)
            modules.setdefault(key, []).append(_test_file(entry[0]))
    for key, files in modules.items():
        if key == "in_turn":
            BACKGROUND.add(key, files, COSTS[key], _in_turns)
            continue
        part, backend = key.split(":")
        cost = COSTS.get(part, {}).get(backend, 30)
        BACKGROUND.add(key, files, cost, _alone(part, backend))


_declare_chains()


def scenario_result(request, backend, name):
    """What the scenario `name` of `CHAIN` returned under `backend`, for
    the test whose `request` this is (the scenario's error fails it)."""
    factory = request.getfixturevalue("tmp_path_factory")
    key = _run_key(next(e for e in CHAIN if e[2] == name), backend)
    result = BACKGROUND.result(key, factory)
    result = (result[backend] if key == "in_turn" else result)[name]
    assert "error" not in result, result.get("error")
    return result


def chain_results(*names):
    """A module-scoped fixture: `{backend: result}` of the scenarios
    `names` of `CHAIN`, their results merged (see `scenario_result`)."""

    @pytest.fixture(scope="module")
    def fixture(request):
        return {
            b: {
                k: v
                for n in names
                for k, v in scenario_result(request, b, n).items()
            }
            for b in BACKENDS
        }

    return fixture


def shared_result(request, backend, name):
    """What scenario `name` (one that records its backend) returned under
    `backend`."""
    result = scenario_result(request, backend, name)
    assert result["backend"] == backend
    return result
