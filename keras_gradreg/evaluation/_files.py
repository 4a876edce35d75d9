"""The files of a :class:`Results`: JSON, Markdown, CSV, NumPy and a plot.

:func:`save` writes each to a temporary file in the output folder and
renames them over the old ones only once all are complete (``os.replace``
is atomic within a folder): a failure leaves the old files intact.
:func:`write_into` writes them straight into a scratch folder that its
caller swaps in whole (the command line's one atomic layer). correct.npz
records the SHA-256 of the others, so that a folder left half renamed by a
kill (or mixed by hand) does not load (:func:`check_consistent`).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import warnings
from typing import Callable, Dict, List

import numpy as np

from keras_gradreg import _atomic
from keras_gradreg.attacks import _norms
from keras_gradreg.evaluation._markdown import markdown_table
from keras_gradreg.evaluation._tables import eps_key
from keras_gradreg.evaluation._tables import eps_keys

FILES = {
    "json": "results.json",
    "md": "results.md",
    "csv": "results.csv",
    "npz": "correct.npz",
    "png": "accuracy_vs_eps.png",
}
"""The file of each kind, in the order they are written."""


def array_name(key: tuple) -> str:
    """The name in correct.npz of a per-example array: its key's parts
    joined by ``/`` (``white_box/<model>/<attack>/<eps>``)."""
    return "/".join(str(part) for part in key)


MANIFEST = "sha256"
"""correct.npz holds ``sha256/<file>``: the SHA-256 of each other file of
the same save, which :func:`load` checks."""

# The plot and the tables first, correct.npz (their hashes) last.
_WRITE_ORDER = ("json", "md", "csv", "png", "npz")


def save(results, out_dir: str, overwrite: bool) -> Dict[str, str]:
    """Writes every file of ``results`` into ``out_dir`` (see Results.save):
    each to a temporary file beside it, then all renamed into place."""
    paths = _paths(out_dir, overwrite)
    written: Dict[str, str] = {}
    try:
        _write(results, lambda kind: _atomic.temporary_beside(paths[kind]), written)
        for kind in set(paths) - set(written):  # an old plot would not match
            with contextlib.suppress(FileNotFoundError):
                os.remove(paths[kind])
        for step, kind in enumerate([k for k in FILES if k in written], 1):
            os.replace(written[kind], paths[kind])
            written[kind] = paths[kind]
            _atomic.fault_point(f"rename {step}")
    except BaseException:
        for kind, path in written.items():
            if path != paths[kind]:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)
        raise
    return {kind: paths[kind] for kind in FILES if kind in written}


def write_into(results, folder: str) -> Dict[str, str]:
    """Writes every file of ``results`` straight into ``folder``, a scratch
    folder no one reads until it is swapped in whole (``keras-gradreg
    evaluate``'s :class:`~keras_gradreg._atomic.Output`): no file of its own
    is renamed, the folder's one rename makes the set atomic."""
    paths, written = _paths(folder, overwrite=True), {}
    _write(results, paths.__getitem__, written)
    return {kind: paths[kind] for kind in FILES if kind in written}


def _paths(out_dir: str, overwrite: bool) -> Dict[str, str]:
    """Each kind's path in ``out_dir`` (created); with ``overwrite`` False a
    FileExistsError if one exists."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {kind: os.path.join(out_dir, name) for kind, name in FILES.items()}
    existing = [p for p in paths.values() if os.path.exists(p)]
    if existing and not overwrite:
        raise FileExistsError(f"{', '.join(existing)} exist; pass overwrite=True "
                              "to replace them.")
    return paths


def _write(results, target: Callable[[str], str], written: Dict[str, str]) -> None:
    """Writes each kind to the path ``target(kind)`` (correct.npz last, with the
    others' SHA-256), recording it in ``written``; without matplotlib the
    plot is skipped with a warning. A failed file is removed."""
    def manifest() -> dict:
        return {f"{MANIFEST}/{FILES[kind]}": np.array(_sha256(path))
                for kind, path in written.items()}

    writers: Dict[str, Callable] = {
        "json": lambda handle: handle.write(
            json.dumps(results.to_dict(), indent=2).encode()),
        "md": lambda handle: handle.write(markdown(results).encode()),
        "csv": lambda handle: handle.write(_csv_text(results).encode()),
        "png": lambda handle: _plot(results, handle),
        "npz": lambda handle: np.savez_compressed(handle, **manifest(), **{
            array_name(key): value for key, value in results.arrays().items()}),
    }
    for step, kind in enumerate(_WRITE_ORDER, 1):
        path = target(kind)
        try:
            with open(path, "wb") as handle:
                writers[kind](handle)
        except ImportError:  # matplotlib, for the plot only
            warnings.warn(f"matplotlib is not installed: no {FILES[kind]}.")
            os.remove(path)
            continue
        except BaseException:
            os.remove(path)
            raise
        written[kind] = path
        _atomic.fault_point(f"written {step}")


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_consistent(out_dir: str) -> None:
    """Raises ValueError if ``out_dir``'s files are not all of one save.

    correct.npz lists the SHA-256 of the other files it was saved with;
    every one present must match, and no other file of :data:`FILES` may
    be there. (Folders without that list, or without correct.npz, are not
    checked.)
    """
    path = os.path.join(out_dir, FILES["npz"])
    if not os.path.exists(path):
        return
    with np.load(path, allow_pickle=False) as arrays:
        prefix = f"{MANIFEST}/"
        listed = {name[len(prefix):]: str(arrays[name])
                  for name in arrays.files if name.startswith(prefix)}
    if not listed:
        return
    for name in FILES.values():
        other = os.path.join(out_dir, name)
        if name == FILES["npz"] or not os.path.exists(other):
            continue
        if name not in listed or _sha256(other) != listed[name]:
            raise ValueError(
                f"{out_dir} mixes the files of different saves: {name} is "
                f"not the one {FILES['npz']} was saved with (an interrupted "
                "or partly copied save?). Save the results again, or restore "
                "the whole folder from one save.")


def load(out_dir: str) -> tuple:
    """Reads ``out_dir``'s results.json, after :func:`check_consistent`;
    returns its data and a function ``keys -> {key: array}`` that reads
    those keys' arrays from correct.npz (none when the file is missing or
    lacks a key)."""
    check_consistent(out_dir)
    with open(os.path.join(out_dir, FILES["json"])) as handle:
        data = json.load(handle)

    def read_arrays(keys) -> dict:
        path = os.path.join(out_dir, FILES["npz"])
        if not os.path.exists(path):
            return {}
        with np.load(path, allow_pickle=False) as arrays:
            return {key: arrays[array_name(key)] for key in keys
                    if array_name(key) in arrays.files}

    return data, read_arrays


def _percent(value: float) -> str:
    return f"{100 * value:.1f}"


def markdown(results) -> str:
    """results.md: accuracy table, which part of an ensemble broke the
    examples, transfer matrix (two or more models), checks, sections."""
    keys = eps_keys(results.eps_values)
    attacks, models = results.attack_names, results.model_names
    columns = [(a, e) for a in attacks + ["worst_case"] for e in keys]
    lines = [
        "# Robustness report",
        "",
        f"{results.settings['num_examples']} examples; accuracy in %; "
        f"{_threat_model(results)}; worst_case = per-example worst over all "
        "attacks and the clean prediction."
        + (" Worst-case mode: each attack ran only on the examples the "
           "attacks before it left correct; its column is what is left "
           "after it." if results.worst_case_only else ""),
        "",
    ]
    lines += markdown_table(
        ["Model", "Natural"] + [f"{a} eps={e}" for a, e in columns],
        [[name, _percent(results.accuracy(name))]
         + [_percent(results.accuracy(name, a, e)) for a, e in columns]
         for name in models])
    lines += _attack_lines(results)
    lines += _breakers_table(results)
    lines += (_transfer_table(results)
              if len(models) > 1 and not results.worst_case_only else [])
    checks, failed = results.masking_checks, results.warnings
    lines += ["", "## Masking checks", "",
              f"{len(checks) - len(failed)} of {len(checks)} checks passed.",
              ""]
    lines += [f"- **WARNING**: {message}" for message in failed]
    data = results.to_dict()["sections"]
    for name in results.section_names:
        section = data[name]
        if section["markdown"] is not None:
            lines += ["", f"## {section['title']}", ""] + section["markdown"]
    return "\n".join(lines) + "\n"


def _threat_model(results) -> str:
    """The header's words for the attacks' threat model: Square (alone
    or in the AutoAttack ensemble) uses the model's outputs only."""
    settings = results.settings.get("attacks", {})
    registered = {(settings.get(name) or {}).get("registered") or name
                  for name in results.attack_names}
    norm = _norms.TITLES[results.norm]
    with_square = {"square", "autoattack"} if results.norm != "l1" else {
        "square"}  # AutoAttack in L1 runs no Square
    if with_square & registered:
        return f"{norm} attacks (white-box, and the score-based black-box Square)"
    return f"white-box {norm} attacks"


# Options every attack shares, left out of the settings line.
_COMMON_OPTIONS = ("clip_min", "clip_max", "seed", "batch_size", "verbose")


def _attack_lines(results) -> List[str]:
    """Each attack's options as run (its own defaults otherwise), and a
    note when the report has no AutoAttack to read as the headline."""
    settings = results.settings.get("attacks", {})
    described = []
    for name in results.attack_names:
        attack = settings.get(name) or {}
        options = ", ".join(
            f"{key} {value:g}" if isinstance(value, float) else f"{key} {value}"
            for key, value in (attack.get("kwargs") or {}).items()
            if key not in _COMMON_OPTIONS)
        registered = attack.get("registered")
        label = name if registered in (None, name) else f"{name} ({registered})"
        described.append(f"`{label}`" + (f": {options}" if options else ""))
    lines = ["", "Attacks as run (each attack's defaults otherwise): "
             + "; ".join(described) + "."]
    if not any((settings.get(name) or {}).get("registered") == "autoattack"
               for name in results.attack_names):
        lines += [
            "",
            "No AutoAttack in this report: attacks of a few iterations "
            "overstate robustness, so read these numbers as upper bounds and "
            "add `autoattack` for the headline number."]
    return lines


def _part_order() -> tuple:
    """``clean``, then the parts of the AutoAttack versions in the order
    they run (from ``attacks.autoattack.VERSIONS``, the one list of them)."""
    from keras_gradreg.attacks.autoattack import VERSIONS

    return ("clean",) + tuple(dict.fromkeys(
        part for parts in VERSIONS.values() for part in parts))


def _breakers_table(results) -> List[str]:
    """Which part of an ensemble broke the examples (``Results.broken_by``):
    one row per model, attack and eps, the share each part broke, in %."""
    rows = [(model, attack, eps)
            for model in results.model_names
            for attack in results.attack_names
            for eps in results.eps_values
            if results.broken_by(model, attack, eps)]
    if not rows:
        return []
    found = {part for model, attack, eps in rows
             for part in results.broken_by(model, attack, eps)}
    found |= {part for attack in {attack for _, attack, _ in rows}
              for part in _ensemble_parts(results, attack)}
    order = _part_order()
    parts = [p for p in order if p in found] + sorted(found - set(order))
    lines = [
        "",
        "## Which attack broke the examples (%)",
        "",
        "Each attack of an ensemble runs only on the examples still "
        "classified correctly; `clean` = misclassified without attack; "
        "`robust` = left correct by every part.",
        "",
    ]
    cells = []
    for model, attack, eps in rows:
        shares = results.broken_by(model, attack, eps)
        cells.append([model, attack, eps_key(eps)]
                     + [_percent(shares.get(part, 0.0)) for part in parts]
                     + [_percent(results.accuracy(model, attack, eps))])
    return lines + markdown_table(
        ["Model", "attack", "eps", *parts, "robust"], cells)


def _ensemble_parts(results, attack: str) -> tuple:
    """Every part of a registered AutoAttack version (so that a part that
    broke nothing shows 0.0), from the attack's recorded settings."""
    from keras_gradreg.attacks.autoattack import VERSIONS

    settings = results.settings.get("attacks", {}).get(attack) or {}
    if settings.get("registered") != "autoattack":
        return ()
    version = (settings.get("kwargs") or {}).get("version", "standard")
    return ("clean",) + tuple(VERSIONS.get(version, ()))


def _transfer_table(results) -> List[str]:
    """The transfer matrix at ``results.transfer_eps`` (two or more
    models; with one it would repeat the white-box column)."""
    attacks, models = results.attack_names, results.model_names
    pairs = [(a, s) for a in attacks for s in models]
    lines = [
        "",
        f"## Transfer attacks at eps={results.transfer_eps:g} (%)",
        "",
        "Rows: the model evaluated; columns: attack / model the examples were "
        "crafted on (the diagonal is white-box).",
        "",
    ]
    return lines + markdown_table(
        ["Model"] + [f"{a} / {s}" for a, s in pairs],
        [[target] + [_percent(results.transfer(s, target, a))
                     for a, s in pairs] for target in models])


def csv_rows(results) -> List[list]:
    """results.csv: one row per accuracy (clean, white-box, worst case,
    transfer)."""
    rows = [["kind", "source", "target", "attack", "eps", "accuracy"]]
    for name in results.model_names:
        rows.append(["clean", name, name, "", 0.0, results.accuracy(name)])
        for attack in results.attack_names + ["worst_case"]:
            kind = "worst_case" if attack == "worst_case" else "white_box"
            for eps in results.eps_values:
                rows.append([kind, name, name, attack, eps,
                             results.accuracy(name, attack, eps)])
    pairs = [] if results.worst_case_only else results.model_names
    for source in pairs:
        for target in pairs:
            for attack in results.attack_names:
                rows.append(["transfer", source, target, attack,
                             results.transfer_eps,
                             results.transfer(source, target, attack)])
    return rows


def _csv_text(results) -> str:
    text = io.StringIO()
    csv.writer(text).writerows(csv_rows(results))
    return text.getvalue()


def _plot(results, handle) -> None:
    # A bare Figure renders with Agg and leaves pyplot's backend untouched.
    from matplotlib.figure import Figure

    panels = results.attack_names + ["worst_case"]
    eps_values = [0.0] + results.eps_values
    figure = Figure(figsize=(3.2 * len(panels), 3.0))
    axes = figure.subplots(1, len(panels), squeeze=False)
    for axis, attack in zip(axes[0], panels):
        for name in results.model_names:
            accs = [results.accuracy(name)] + [
                results.accuracy(name, attack, e) for e in eps_values[1:]]
            axis.plot(eps_values, accs, marker="o", label=name)
        axis.set_title(attack)
        axis.set_xlabel(f"eps ({_norms.TITLES[results.norm]})")
        axis.set_ylim(0.0, 1.02)
    axes[0][0].set_ylabel("accuracy")
    axes[0][-1].legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(handle, format="png", dpi=100)
