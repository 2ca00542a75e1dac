"""MkDocs hook: serves `examples/figures/*.png` as `figures/*.png`.

The examples draw their figures into `examples/figures/`, where the tests
check them; the site links them from there instead of keeping a copy.
"""

import pathlib

from mkdocs.structure.files import File

__all__ = ["on_files"]

FIGURES = pathlib.Path(__file__).parents[2] / "examples" / "figures"


def on_files(files, config):
    """Adds every figure of `examples/figures/` to the site's files."""
    for path in sorted(FIGURES.glob("*.png")):
        files.append(
            File.generated(
                config, f"figures/{path.name}", abs_src_path=str(path)
            )
        )
    return files
