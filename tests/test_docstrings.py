"""Runs every docstring example of keras_gradreg, module by module.

The same examples run with ``python -m pytest --doctest-modules
keras_gradreg``; this file puts them in the default suite. Examples that
need data files or a download are marked ``+SKIP`` in their docstrings,
with the reason in the prose before them.
"""

import doctest
import importlib
import inspect
import pkgutil

import pytest

import keras_gradreg

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(keras_gradreg.__path__, "keras_gradreg.")
    if info.name != "keras_gradreg.__main__"  # runs the command on import
)
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def test_every_module_is_found():
    assert {"keras_gradreg._checks", "keras_gradreg.attacks.apgd",
            "keras_gradreg.callbacks", "keras_gradreg.cli"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report = []
    for test in finder.find(module, name):
        runner.run(test, out=report.append)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, "".join(report)


def test_every_public_function_and_class_has_an_example():
    missing = [
        name for name in keras_gradreg.__all__
        if (inspect.isclass(obj := getattr(keras_gradreg, name))
            or inspect.isfunction(obj))
        and ">>>" not in (inspect.getdoc(obj) or "")
    ]
    assert missing == []
