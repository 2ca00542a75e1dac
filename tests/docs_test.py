"""The documentation: the site builds strictly, every public name has a
reference page, and every Python code block of the README and the site
runs.

A page's Python blocks run in order in one namespace, in a temporary
directory, as a reader would paste them (every page in turn, `run_pages`,
in the background TensorFlow process of the examples' group
`"examples:others"`, `example_runs.GROUPS`). A block preceded by the line
`<!-- docs-test: skip: REASON -->` is not run (only for what downloads
data, needs a cluster or trains for long); the reason is required.
Building the site needs the `docs` extra (MkDocs, Material, mkdocstrings),
which the `test` extra installs; without it only the build is skipped.
"""

import importlib.util
import os
import pathlib
import re
import subprocess
import sys
import traceback

import keras
import pytest
from conftest import background_run
from example_runs import quick_fixture

import keras_mixup

ROOT = pathlib.Path(__file__).parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
PAGES = [README, *sorted(DOCS.rglob("*.md"))]

_FENCE = re.compile(
    r"(?P<marker><!-- docs-test: skip(?P<reason>[^>]*)-->\s*\n)?"
    r"^(?P<indent> *)```python\n(?P<code>.*?)^(?P=indent)```",
    re.DOTALL | re.MULTILINE,
)
_SKIP = re.compile(r"<!-- docs-test: skip(.*?)-->")
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")

#: The modules of the docs extra, as imported.
DOCS_EXTRA = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers")


def _missing_docs_extra():
    return [m for m in DOCS_EXTRA if importlib.util.find_spec(m) is None]


def python_blocks(text):
    """`(code, skip_reason)` for every ```python block of `text`, dedented
    by the fence's indentation (blocks inside list items)."""
    blocks = []
    for match in _FENCE.finditer(text):
        indent = len(match["indent"])
        code = "".join(line[indent:] for line in match["code"].splitlines(True))
        reason = match["reason"]
        blocks.append((code, reason.strip(" :") if match["marker"] else None))
    return blocks


def _page_id(path):
    return str(path.relative_to(ROOT))


def test_python_blocks_are_found_with_their_skip_reasons():
    text = (
        "a\n```python\nx = 1\n```\n"
        "<!-- docs-test: skip: downloads ImageNet -->\n"
        "```python\ny = 2\n```\n"
        "- item:\n\n  ```python\n  z = 3\n  ```\n"
        "```bash\nls\n```\n"
    )
    assert python_blocks(text) == [
        ("x = 1\n", None),
        ("y = 2\n", "downloads ImageNet"),
        ("z = 3\n", None),
    ]


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_every_skip_marker_gives_a_reason_and_precedes_a_block(page):
    text = page.read_text()
    markers = _SKIP.findall(text)
    skipped = [r for _, r in python_blocks(text) if r is not None]
    assert len(skipped) == len(markers), "a marker not before a python block"
    assert all(len(reason) > 10 for reason in skipped), skipped


#: The pages with Python blocks.
BLOCK_PAGES = [p for p in PAGES if python_blocks(p.read_text())]


def run_pages(folder):
    """A scenario (`scenario_runner.py`): runs the Python blocks of every
    page of `BLOCK_PAGES`, in order in one namespace per page, each page
    in its own folder under `folder` and with Keras's state reset, as a
    fresh reader would. Returns `{page: None, or the traceback of the
    block that raised}`."""
    found = {}
    try:
        for page in BLOCK_PAGES:
            name = _page_id(page)
            work = pathlib.Path(folder) / name.replace("/", "_")
            work.mkdir()
            os.chdir(work)
            # Keras's names and state reset; no full collection (half a
            # second a page), which the collector runs when it needs to.
            keras.utils.clear_session(free_memory=False)
            keras.config.set_dtype_policy("float32")
            namespace = {"__name__": "__docs__"}
            found[name] = None
            try:
                for i, (code, reason) in enumerate(
                    python_blocks(page.read_text())
                ):
                    if reason is None:
                        code = compile(code, f"{name}[{i}]", "exec")
                        exec(code, namespace)
            except Exception:
                found[name] = traceback.format_exc()[-4000:]
    finally:
        os.chdir(ROOT)
    return found


#: Every page's blocks, run in a background process (see
#: `conftest.Background`) that imports TensorFlow once for them and for
#: some of the examples' quick runs.
pages_run = quick_fixture("examples:others", "docs_pages")


@pytest.mark.parametrize("page", BLOCK_PAGES, ids=_page_id)
def test_the_python_blocks_of_a_page_run(page, pages_run):
    error = pages_run[_page_id(page)]
    assert error is None, error


def test_the_readme_is_short_and_gives_the_two_commands():
    text = README.read_text()
    assert len(text.splitlines()) <= 200
    for command in (
        'pip install -e ".[examples]" && python examples/quickstart.py',
        'pip install -e ".[test]" && python -m pytest tests',
        "python -m mkdocs serve",
    ):
        assert command in text


@pytest.mark.parametrize("page", [README, ROOT / "RESULTS.md"], ids=_page_id)
def test_the_links_outside_the_site_resolve(page):
    """The README and RESULTS.md are read on their own, outside the site
    (whose links `mkdocs build --strict` checks)."""
    targets = [t for t in _LINK.findall(page.read_text()) if "://" not in t]
    assert targets
    missing = [t for t in targets if not (page.parent / t).exists()]
    assert missing == []


def _reference_pages():
    pages = {}
    for path in (DOCS / "reference").glob("*.md"):
        for target in re.findall(r"^::: (\S+)", path.read_text(), re.M):
            pages[target] = path.relative_to(DOCS).as_posix()
    return pages


def test_every_public_name_has_a_reference_page_in_the_nav():
    pages = _reference_pages()
    nav = (ROOT / "mkdocs.yml").read_text()
    names = [n for n in keras_mixup.__all__ if n != "__version__"]
    wanted = [f"keras_mixup.{n}" for n in names] + ["keras_mixup.metrics"]
    assert [w for w in wanted if w not in pages] == []
    assert [w for w in wanted if pages[w] not in nav] == []


def _build_site(tmp_path_factory):
    """`(mkdocs build --strict's result, the site's folder)`, or `None`
    without the docs extra."""
    if _missing_docs_extra():
        return None
    site = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        # Not `--quiet`: it hides the warnings that `--strict` counts.
        [sys.executable, "-m", "mkdocs", "build", "--strict"]
        + ["--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "KERAS_BACKEND": "tensorflow",
            "NO_MKDOCS_2_WARNING": "1",
        },
        timeout=900,
    )
    return result, site


#: The site, built in the background (see `conftest.Background`).
site_build = background_run("mkdocs", _build_site, cost=90)


@pytest.mark.skipif(
    bool(_missing_docs_extra()),
    reason=(
        "the docs extra is not installed (missing "
        f'{", ".join(_missing_docs_extra())}): pip install -e ".[docs]"'
    ),
)
def test_the_site_builds_strictly_with_the_runtime_docstrings(site_build):
    result, site = site_build
    assert result.returncode == 0, result.stderr[-4000:]
    # The options that options.document_options adds at import time.
    model = (site / "reference" / "MixupModel" / "index.html").read_text()
    for option in ("cutmix_minmax", "clean_loss_weight", "switch_prob"):
        assert option in model
    gallery = (site / "gallery" / "index.html").read_text()
    for figure in sorted((ROOT / "examples" / "figures").glob("*.png")):
        assert (site / "figures" / figure.name).read_bytes() == (
            figure.read_bytes()
        )
        assert f"figures/{figure.name}" in gallery
