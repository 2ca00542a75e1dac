"""The schedule of the suite's background runs (`conftest.Background`):
longest first, by the last session's seconds where it has them, and the
main process runs queued runs itself while a test waits."""

import threading

from conftest import Background

__all__ = []


def _background(release):
    """A one-worker `Background` with two runs of module `m` (`long`,
    which waits for `release`, and `short`), one of modules `m` and `n`
    and one of `n`."""
    background = Background()
    background.WORKERS = 1
    background.add("long", ["m"], 10, lambda f: release.wait(60) and "long")
    background.add("short", ["m"], 1, lambda f: "short")
    background.add("both", ["m", "n"], 3, lambda f: "m and n")
    background.add("other", ["n"], 5, lambda f: "not selected")
    return background


def test_runs_go_longest_first_by_last_sessions_seconds(tmp_path_factory):
    release = threading.Event()
    background = _background(release)
    background.start({"m"}, tmp_path_factory, {"short": 20.0})
    try:
        assert background.queue == ["short", "long", "both"]
    finally:
        release.set()
        background.pool.shutdown(wait=True)
    assert background.result("long", tmp_path_factory) == "long"
    # Kept for the next session: the runs that ran all their scenarios
    # ("both" ran only those of module m).
    assert set(background.whole_runs()) == {"short", "long"}


def test_a_waiting_test_runs_the_queued_runs_itself(tmp_path_factory):
    """The one worker runs `first`, which waits for `second`, queued
    behind it: the test that needs `first` runs `second` here meanwhile
    (waiting idle, it would wait until `first` gave up)."""
    started, done = threading.Event(), threading.Event()

    def first(factory):
        started.set()
        return done.wait(30)

    background = Background()
    background.WORKERS = 1
    background.add("first", ["m"], 2, first)
    background.add("second", ["m"], 1, lambda f: done.set() or "second")
    background.start({"m"}, tmp_path_factory)
    assert started.wait(30)  # the worker holds `first`
    assert background.result("first", tmp_path_factory) is True
    assert background.result("second", tmp_path_factory) == "second"
    background.pool.shutdown(wait=True)
    assert set(background.seconds) == {"first", "second"}
