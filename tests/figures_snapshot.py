"""Checks that an example run leaves `examples/figures/` as it was.

The figures there are the ones the README shows: a `--quick` run must
write its figures elsewhere (a temporary directory) and never over them.
"""

import contextlib
import hashlib
import pathlib
import shutil

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
def figures_unchanged():
    """Fails if the block adds, removes or rewrites a file in FIGURES."""
    before = snapshot()
    yield
    assert snapshot() == before, "a run wrote into examples/figures/"


def check_and_remove_quick_figures(paths, names):
    """The quick run saved `names`, outside FIGURES; removes their folder."""
    paths = [pathlib.Path(p) for p in paths]
    assert sorted(p.name for p in paths) == sorted(names)
    for path in paths:
        assert path.stat().st_size > 0
        assert path.parent != FIGURES
    shutil.rmtree(paths[0].parent)
