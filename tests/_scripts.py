"""The repository's scripts (``examples/``, ``benchmarks/``) imported as
modules by path, as the tests use them (they are not a package)."""

import importlib.util
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
BENCHMARKS = ROOT / "benchmarks"


def load_script(path) -> object:
    """Imports the script at ``path`` under the name ``<folder>_<stem>``.

    The script's folder goes on ``sys.path`` first (the scripts import their
    helpers, e.g. ``_experiment``, from there), and the module is registered
    in ``sys.modules`` (dataclasses look their module up there).
    """
    path = pathlib.Path(path)
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    name = f"{path.parent.name}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
