"""Checks on the examples' `--quick` runs, shared by their tests.

- `examples/figures/` holds the figures the docs show: a `--quick` run
  writes its figures elsewhere (`examples/output/quick/`), never over them;
- no `fit` on a `tf.data` pipeline warns that `shuffle=True` is ignored.
"""

import contextlib
import hashlib
import pathlib
import shutil
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
