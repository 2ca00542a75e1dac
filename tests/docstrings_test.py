"""Runs the `Example:` block of every public docstring in the package, and
those of the internal modules' documented names."""

import inspect
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_mixup
from keras_mixup import draws, labels, pairing, state

_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


#: The public modules: the package, and submodules with their own names.
MODULES = {"": keras_mixup, "metrics.": keras_mixup.metrics}

#: Internal modules whose names' examples run too (not every name has one).
INTERNAL = {
    f"{module.__name__.split('.')[-1]}.": module
    for module in (draws, labels, pairing, state)
}


def _public(modules=MODULES):
    for prefix, module in modules.items():
        for name in module.__all__:
            if name != "__version__":
                yield prefix + name, getattr(module, name)


def _documented(modules=MODULES):
    for name, obj in _public(modules):
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        yield name, obj
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if not attr.startswith("_") and inspect.isfunction(member):
                    yield f"{name}.{attr}", member


def _each_once(*named):
    """The `(name, obj)` pairs of `named`, each object once (the internal
    modules re-export some public names)."""
    seen = set()
    for name, obj in named:
        if id(obj) not in seen:
            seen.add(id(obj))
            yield name, obj


EXAMPLES = [
    pytest.param(block, id=f"{name}[{i}]")
    for name, obj in _each_once(*_documented(), *_documented(INTERNAL))
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
