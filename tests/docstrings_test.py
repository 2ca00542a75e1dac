"""Runs the `Example:` block of every public docstring in the package."""

import inspect
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_mixup

_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


#: The public modules: the package, and submodules with their own names.
MODULES = {"": keras_mixup, "metrics.": keras_mixup.metrics}


def _public():
    for prefix, module in MODULES.items():
        for name in module.__all__:
            if name != "__version__":
                yield prefix + name, getattr(module, name)


def _documented():
    for name, obj in _public():
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        yield name, obj
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if not attr.startswith("_") and inspect.isfunction(member):
                    yield f"{name}.{attr}", member


EXAMPLES = [
    pytest.param(block, id=f"{name}[{i}]")
    for name, obj in _documented()
    for i, block in enumerate(_BLOCK.findall(inspect.getdoc(obj) or ""))
]


def test_every_public_name_has_an_example():
    undocumented = [
        name
        for name, obj in _public()
        if not _BLOCK.search(inspect.getdoc(obj) or "")
    ]
    assert undocumented == []


@pytest.mark.parametrize("source", EXAMPLES)
def test_docstring_example_runs(source, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {"keras_mixup": keras_mixup, "keras": keras, "np": np, "tf": tf}
    exec(compile(source, "<docstring>", "exec"), namespace)
