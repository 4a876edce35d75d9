r"""AutoAttack on saved models, in resumable chunks of test images.

The standard AutoAttack ensemble (``keras_gradreg.attacks.autoattack``:
APGD-CE, APGD-T, FAB-T and Square, each on the images still robust) costs
far more per image on a robust model than on an undefended one, and on a
CPU it takes hours for 1,000 MNIST images. This script spreads the work:

* the first ``--num_examples`` test images are cut into chunks of
  ``--chunk`` images, and every (chunk, model, eps) is one unit of work;
  units run chunk by chunk, so an interrupted run has the same images done
  for every model;
* each finished unit appends one JSON line to ``OUT/results.jsonl``: which
  images were classified correctly clean and under attack, which attack
  broke each one, and the unit's wall-clock and CPU seconds;
* a rerun with the same settings skips the units found there and goes on;
* ``OUT/autoattack.md`` (rewritten after every unit) holds, per model and
  eps, the images done, clean and robust accuracy over them, the share each
  attack broke, the seconds per image, and what the images left would take;
* ``--workers N`` runs N processes of one TensorFlow thread each, which
  take the units in turn (a claim file under a lock says who runs what):
  on 2 CPU cores two single-threaded processes attacked a third more
  images per second than one process with TensorFlow's default threads
  (docs/ATTACKS.md);
* ``OUT/autoattack.png`` (with matplotlib; written with the summary):
  robust accuracy against eps, one panel per model, AutoAttack beside the
  earlier worst case when compared;
* with ``--compare DIR`` (the folder of an earlier ``Results``, e.g. an
  example's ``--out`` on the same first test images), also the earlier
  per-example worst case on the same images, the points AutoAttack takes off
  it, and the images the earlier attacks broke that AutoAttack missed
  (which should be none: a nonzero count is a weakness of the ensemble).

    python benchmarks/autoattack_eval.py --data_dir ../shared/data/mnist \
        --models runs/mnist/natural.keras,runs/mnist/logit_reg.keras \
        --num_examples 1000 --chunk 100 --workers 2 --out runs/autoattack
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import keras
import numpy as np
from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import keras_gradreg  # noqa: E402
from keras_gradreg import attacks  # noqa: E402
from keras_gradreg import datasets  # noqa: E402

import _workers  # noqa: E402
from _machine import machine  # noqa: E402

FLAGS = flags.FLAGS

RESULTS = "results.jsonl"
SUMMARY = "autoattack.md"
PLOT = "autoattack.png"
CLAIMS = _workers.CLAIMS


def units(num_examples: int, chunk: int, names: Sequence[str],
          eps_values: Sequence[float]) -> Iterator[Tuple[int, int, str, float]]:
    """``(start, stop, model, eps)`` in run order: chunk by chunk.

    Example:
        >>> list(units(3, 2, ["a"], [0.1]))
        [(0, 2, 'a', 0.1), (2, 3, 'a', 0.1)]
    """
    for start in range(0, num_examples, chunk):
        stop = min(start + chunk, num_examples)
        for name in names:
            for eps in eps_values:
                yield start, stop, name, eps


def key(line: Mapping) -> Tuple[int, int, str, float]:
    """The unit a result line belongs to."""
    return line["start"], line["stop"], line["model"], float(line["eps"])


def read_lines(path: str, settings: Mapping) -> List[dict]:
    """The result lines of ``path`` made with ``settings`` (others are
    ignored: a changed setting starts afresh)."""
    if not os.path.exists(path):
        return []
    with open(path) as handle:
        lines = [json.loads(text) for text in handle if text.strip()]
    return [line for line in lines if line["settings"] == dict(settings)]


def claim_next(out: str, todo: Sequence[tuple], settings: Mapping,
               worker: int) -> Optional[tuple]:
    """The first unit of ``todo`` that is neither done nor claimed by a
    worker of this run, claimed for ``worker``; None when none is left."""
    return _workers.claim_next(
        out, todo, settings, worker,
        done=lambda: {key(line) for line in read_lines(
            os.path.join(out, RESULTS), settings)},
        describe=lambda unit: dict(zip(("start", "stop", "model", "eps"),
                                       unit)),
        key=key)


def attack_unit(model, x: np.ndarray, y: np.ndarray, eps: float,
                settings: Mapping) -> dict:
    """Runs AutoAttack on one chunk; returns the unit's result fields.

    Clean and robust correctness are read from the attack that broke each
    image (``"clean"``: misclassified from the start; ``""``: unbroken).
    """
    options = {k: v for k, v in settings.items() if k in (
        "version", "seed", "clip_min", "clip_max", "batch_size")}
    wall, cpu = time.perf_counter(), time.process_time()
    _, broken_by = attacks.autoattack(
        model, x, y, eps=eps, return_breakers=True, verbose=0, **options)
    broken_by = [str(name) for name in np.asarray(broken_by)]
    return {
        "clean": [int(name != "clean") for name in broken_by],
        "robust": [int(name == "") for name in broken_by],
        "broken_by": broken_by,
        "wall_s": time.perf_counter() - wall,
        "cpu_s": time.process_time() - cpu,
    }


def summarize(lines: Sequence[Mapping], num_examples: int) -> List[dict]:
    """Per model and eps: images done, accuracies, breakers, seconds.

    Example:
        >>> line = dict(model="a", eps=0.1, start=0, stop=2, clean=[1, 1],
        ...             robust=[1, 0], broken_by=["", "apgd_ce"],
        ...             wall_s=4.0, cpu_s=6.0)
        >>> row = summarize([line], 10)[0]
        >>> row["images"], row["robust"], row["seconds_per_image"]
        (2, 0.5, 2.0)
    """
    groups: Dict[Tuple[str, float], List[Mapping]] = {}
    for line in lines:
        groups.setdefault((line["model"], float(line["eps"])), []).append(line)
    rows = []
    for (name, eps), group in groups.items():
        clean = np.concatenate([line["clean"] for line in group])
        robust = np.concatenate([line["robust"] for line in group])
        breakers = [b for line in group for b in line["broken_by"]
                    if b and b != "clean"]  # "clean": wrong before any attack
        wall = sum(line["wall_s"] for line in group)
        images = len(clean)
        names, counts = np.unique(breakers, return_counts=True)
        rows.append({
            "model": name, "eps": eps, "images": images,
            "clean": float(clean.mean()), "robust": float(robust.mean()),
            "broken_by": {str(n): int(c) for n, c in zip(names, counts)},
            "wall_s": wall, "seconds_per_image": wall / images,
            "left_s": wall / images * max(num_examples - images, 0),
        })
    return sorted(rows, key=lambda row: (row["model"], row["eps"]))


def compare(rows: Sequence[Mapping], lines: Sequence[Mapping],
            earlier: "keras_gradreg.Results") -> List[dict]:
    """Adds to each summary row the earlier per-example worst case.

    For each model and eps of ``rows`` that ``earlier`` holds (same model
    name, same eps), on the images done: ``earlier_robust`` (the worst case
    of the earlier white-box attacks), ``points_off`` (earlier minus
    AutoAttack, in points) and ``missed`` (images the earlier attacks broke
    that AutoAttack left correct). Rows without a counterpart are unchanged.

    Raises:
        ValueError: When the clean predictions differ on an image: the two
            runs did not see the same images (or the same model).
    """
    eps_known = {f"{e:g}" for e in earlier.eps_values}
    out = []
    for row in rows:
        row = dict(row)
        name, eps = row["model"], row["eps"]
        if name in earlier.model_names and f"{eps:g}" in eps_known:
            group = sorted((line for line in lines if line["model"] == name
                            and float(line["eps"]) == eps),
                           key=lambda line: line["start"])
            index = np.concatenate([np.arange(line["start"], line["stop"])
                                    for line in group])
            clean = np.concatenate([line["clean"] for line in group]) == 1
            robust = np.concatenate([line["robust"] for line in group]) == 1
            if index.max() >= len(earlier.correct(name)) or np.any(
                    earlier.correct(name)[index] != clean):
                raise ValueError(
                    f"{name}: the clean predictions differ from the earlier "
                    "results': not the same images or not the same model.")
            worst = earlier.correct(name, "worst_case", eps)[index]
            row.update(earlier_robust=float(worst.mean()),
                       points_off=100 * float(worst.mean() - robust.mean()),
                       missed=int(np.sum(robust & ~worst)))
        out.append(row)
    return out


def by_model(rows: Sequence[Mapping]) -> List[str]:
    """The summary pivoted: one line per model, one column per eps.

    A cell is AutoAttack's robust accuracy, then, when the row was compared
    (:func:`compare`), the earlier worst case and AutoAttack's change from
    it in points. ``images`` is a range while the eps are at different
    images (a run in progress); ``clean`` is over the most images.

    Example:
        >>> rows = [dict(model="a", eps=0.1, images=200, clean=0.99,
        ...              robust=0.9, earlier_robust=0.92, points_off=2.0),
        ...         dict(model="a", eps=0.2, images=100, clean=1.0,
        ...              robust=0.5, earlier_robust=0.5, points_off=0.0),
        ...         dict(model="a", eps=0.3, images=100, clean=1.0,
        ...              robust=0.1)]
        >>> print("\\n".join(by_model(rows)))
        | model | images | clean | eps 0.1 | eps 0.2 | eps 0.3 |
        |---|---|---|---|---|---|
        | a | 100-200 | 99.0 | 90.0 (92.0, -2.0) | 50.0 (50.0, +0.0) | 10.0 |
    """
    eps_values = sorted({row["eps"] for row in rows})
    lines = ["| model | images | clean | "
             + " | ".join(f"eps {eps:g}" for eps in eps_values) + " |",
             "|---|---|---|" + "---|" * len(eps_values)]
    for name in dict.fromkeys(row["model"] for row in rows):
        cells = {row["eps"]: row for row in rows if row["model"] == name}
        counts = sorted({row["images"] for row in cells.values()})
        most = max(cells.values(), key=lambda row: row["images"])
        texts = []
        for eps in eps_values:
            row = cells.get(eps)
            text = "-" if row is None else f"{100 * row['robust']:.1f}"
            if row is not None and "earlier_robust" in row:
                change = round(-row["points_off"], 1) + 0.0  # never "-0.0"
                text += f" ({100 * row['earlier_robust']:.1f}, {change:+.1f})"
            texts.append(text)
        images = (f"{counts[0]}" if len(counts) == 1
                  else f"{counts[0]}-{counts[-1]}")
        lines.append(f"| {name} | {images} | {100 * most['clean']:.1f} | "
                     + " | ".join(texts) + " |")
    return lines


def masking_lines(rows: Sequence[Mapping]) -> List[str]:
    """The black-box masking check on the ensemble's own breakers.

    Square runs last, on the images APGD-CE, APGD-T and FAB-T left correct,
    so each image it broke is one every gradient attack of the ensemble
    missed: more than ``keras_gradreg.evaluation.BLACK_BOX_MARGIN`` of the
    images is flagged, as the package's ``black_box_beats_white_box`` check
    flags it in a report.

    Example:
        >>> rows = [dict(model="a", eps=0.3, images=200,
        ...              broken_by={"apgd_ce": 50, "square": 3})]
        >>> print(masking_lines(rows)[-1])
        - a, eps 0.3: Square broke 3 of 200 images (1.5%): **flagged**
    """
    margin = keras_gradreg.evaluation.BLACK_BOX_MARGIN
    lines = ["## Masking check: black box against white box", "",
             "Images that only Square (no gradients) broke, after every "
             "gradient attack of the ensemble missed them; flagged above "
             f"{100 * margin:g}% of the images.", ""]
    found = [row for row in rows if row["broken_by"].get("square")]
    if not found:
        return lines + ["Square broke no image that the gradient attacks "
                        "missed."]
    for row in found:
        count = row["broken_by"]["square"]
        share = count / row["images"]
        lines.append(f"- {row['model']}, eps {row['eps']:g}: Square broke "
                     f"{count} of {row['images']} images ({100 * share:.1f}%)"
                     + (": **flagged**" if share > margin else ""))
    return lines


def markdown(rows: Sequence[Mapping], settings: Mapping) -> str:
    """The summary table of :func:`summarize`'s rows."""
    compared = any("earlier_robust" in row for row in rows)
    lines = [
        "# AutoAttack in chunks",
        "",
        f"Version {settings['version']}, seed {settings['seed']}, first "
        f"{settings['num_examples']} {settings['dataset']} "
        f"{settings['split']} images in chunks of {settings['chunk']}; "
        "robust = classified correctly clean and after the ensemble.",
        "",
        "| model | eps | images | clean | robust | broken by | s / image "
        "| time left |" + (" earlier worst case | points off | missed |"
                           if compared else ""),
        "|---|---|---|---|---|---|---|---|" + ("---|---|---|"
                                              if compared else ""),
    ]
    for row in rows:
        breakers = ", ".join(f"{n} {c}" for n, c in row["broken_by"].items())
        line = (
            f"| {row['model']} | {row['eps']:g} | {row['images']} | "
            f"{100 * row['clean']:.1f} | {100 * row['robust']:.1f} | "
            f"{breakers or '-'} | {row['seconds_per_image']:.2f} | "
            f"{row['left_s'] / 60:.0f} min |")
        if compared:
            line += (f" {100 * row['earlier_robust']:.1f} | "
                     f"{row['points_off']:.1f} | {row['missed']} |"
                     if "earlier_robust" in row else " - | - | - |")
        lines.append(line)
    if compared:
        lines += ["", "Earlier worst case: the per-example worst case of the "
                  "earlier results' white-box attacks on the same images; "
                  "points off: earlier minus AutoAttack; missed: images the "
                  "earlier attacks broke that AutoAttack left correct."]
    if rows and "square" in attacks.autoattack.parts(settings["version"]):
        lines += ["", *masking_lines(rows)]
    if rows:
        lines += ["", "## By model", "", "Robust accuracy under AutoAttack"
                  + (" (in brackets: the earlier worst case on the same "
                     "images, and AutoAttack's change from it in points)"
                     if compared else "") + ".", "", *by_model(rows)]
    return "\n".join(lines) + "\n"


def plot(rows: Sequence[Mapping], path: str) -> bool:
    """Robust accuracy against eps, one panel per model: AutoAttack (solid)
    and, for compared rows, the earlier worst case on the same images
    (dashed); each line starts at the clean accuracy (eps 0). Writes a PNG
    to ``path``; returns False (writing nothing) without matplotlib or rows.
    """
    try:
        # A bare Figure renders with Agg and leaves pyplot's backend untouched.
        from matplotlib.figure import Figure
    except ImportError:
        return False
    names = list(dict.fromkeys(row["model"] for row in rows))
    if not names:
        return False
    figure = Figure(figsize=(3.2 * len(names), 3.2))
    axes = figure.subplots(1, len(names), squeeze=False, sharey=True)[0]
    for axis, name in zip(axes, names):
        cells = sorted((row for row in rows if row["model"] == name),
                       key=lambda row: row["eps"])
        clean = max(cells, key=lambda row: row["images"])["clean"]
        eps = [0.0] + [row["eps"] for row in cells]
        axis.plot(eps, [100 * clean] + [100 * row["robust"] for row in cells],
                  marker="o", label="AutoAttack")
        earlier = [row for row in cells if "earlier_robust" in row]
        if earlier:
            axis.plot([0.0] + [row["eps"] for row in earlier],
                      [100 * clean] + [100 * row["earlier_robust"]
                                       for row in earlier],
                      marker="s", linestyle="--", label="earlier worst case")
        images = sorted({row["images"] for row in cells})
        axis.set_title(f"{name} ({images[0]}"
                       + (f"-{images[-1]}" if len(images) > 1 else "")
                       + " images)", fontsize="medium")
        axis.set_xlabel("eps (L-inf)")
        axis.set_ylim(0, 102)
    axes[0].set_ylabel("robust accuracy (%)")
    axes[-1].legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=100)
    return True


def _write_summary(out: str, rows: Sequence[Mapping], settings: Mapping) -> None:
    """autoattack.md, and the plot beside it (each replaced whole)."""
    _workers.write_atomically(os.path.join(out, SUMMARY),
                              markdown(rows, settings))
    temporary = os.path.join(out, f".{PLOT}.{os.getpid()}.tmp")
    if plot(rows, temporary):
        os.replace(temporary, os.path.join(out, PLOT))


def run(model_paths: Sequence[str], x: np.ndarray, y: np.ndarray,
        eps_values: Sequence[float], settings: Mapping, out: str,
        earlier: "keras_gradreg.Results | None" = None,
        worker: Optional[int] = None) -> list:
    """Runs every unit not yet in ``out``/results.jsonl; returns the rows of
    the summary (also written to ``out``/autoattack.md), compared with
    ``earlier`` results when given (see :func:`compare`).

    With ``worker`` (a number), runs as one of several processes: it takes
    the next unit no other worker has claimed until none is left, and
    prints a line per unit instead of a progress bar.
    """

    def summary() -> list:
        with _workers.locked(out):
            lines = read_lines(path, settings)
        rows = summarize(lines, len(x))
        return rows if earlier is None else compare(rows, lines, earlier)

    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, RESULTS)
    with _workers.locked(out):
        done = {key(line) for line in read_lines(path, settings)}
    names = [os.path.splitext(os.path.basename(p))[0] for p in model_paths]
    if len(set(names)) != len(names):
        raise ValueError(f"Two models share a file name: {names}.")
    loaded = {}
    todo = [u for u in units(len(x), settings["chunk"], names, eps_values)
            if u not in done]
    if worker is None:
        print(f"{len(done)} units done, {len(todo)} to run.", flush=True)
        progbar = keras.utils.Progbar(len(todo), unit_name="unit")
        queue = iter(todo)
    else:
        progbar = None
        queue = iter(lambda: claim_next(out, todo, settings, worker), None)
    for start, stop, name, eps in queue:
        if name not in loaded:
            loaded[name] = keras.models.load_model(
                model_paths[names.index(name)])
        fields = attack_unit(loaded[name], x[start:stop], y[start:stop], eps,
                             settings)
        line = dict(model=name, eps=eps, start=start, stop=stop,
                    settings=dict(settings), **fields)
        with _workers.locked(out):
            _workers.append_line(path, line)
        _write_summary(out, summary(), settings)
        robust = float(np.mean(fields["robust"]))
        if progbar is not None:
            progbar.add(1, [("robust", robust)])
        else:
            print(f"worker {worker}: {name} eps {eps:g} images {start}-{stop}:"
                  f" robust {100 * robust:.1f}% ({fields['wall_s']:.0f} s)",
                  flush=True)
    rows = summary()
    _write_summary(out, rows, settings)
    return rows


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """The script's flags (defined only when it runs as a script, so tests
    that import it share no flag with other scripts)."""
    into = {"flag_values": flag_values}
    flags.DEFINE_list("models", None, "Saved .keras models; each is named by "
                      "its file name without the extension.", **into)
    flags.DEFINE_string("dataset", "mnist", "A name of keras_gradreg.datasets.", **into)
    flags.DEFINE_string("data_dir", None, "Local dataset folder (else tfds).", **into)
    flags.DEFINE_string("split", "test", "Dataset split.", **into)
    flags.DEFINE_list("eps", ["0.1", "0.2", "0.3"], "L-inf radii.", **into)
    flags.DEFINE_integer("num_examples", 1000, "The first N images of the split.", **into)
    flags.DEFINE_integer("chunk", 100, "Images per unit of work.", **into)
    flags.DEFINE_enum("version", "standard", ["standard", "fast", "rand"],
                      "AutoAttack version.", **into)
    flags.DEFINE_integer("seed", 0, "Seed of the random attacks.", **into)
    flags.DEFINE_integer("batch_size", 256, "Images per compiled attack call.", **into)
    flags.DEFINE_float("clip_min", 0.0, "Lower bound of valid inputs.", **into)
    flags.DEFINE_float("clip_max", 1.0, "Upper bound of valid inputs.", **into)
    flags.DEFINE_string("out", None, "Output folder (results.jsonl, .md).", **into)
    flags.DEFINE_string(
        "compare", None, "Folder of earlier keras_gradreg Results (e.g. an "
        "example's --out) on the same first images: adds their per-example "
        "worst case and the points AutoAttack takes off it.", **into)
    flags.DEFINE_integer(
        "workers", 1, "Processes side by side, one TensorFlow thread each "
        "(2 on a 2-core machine: a third faster than 1).", **into)
    flags.DEFINE_integer("worker", None, "Set by --workers for each process.",
                         **into)
    flags.mark_flags_as_required(["models", "out"], flag_values=flag_values)


def main(argv):
    del argv
    settings = {
        "dataset": FLAGS.dataset, "split": FLAGS.split,
        "num_examples": FLAGS.num_examples, "chunk": FLAGS.chunk,
        "version": FLAGS.version, "seed": FLAGS.seed,
        "batch_size": FLAGS.batch_size, "clip_min": FLAGS.clip_min,
        "clip_max": FLAGS.clip_max,
    }
    eps_values = [float(e) for e in FLAGS.eps]
    earlier = (keras_gradreg.Results.load(FLAGS.compare) if FLAGS.compare
               else None)
    x, y = datasets.to_arrays(
        datasets.load(FLAGS.dataset, FLAGS.split, data_dir=FLAGS.data_dir),
        limit=FLAGS.num_examples)
    if FLAGS.workers > 1 and FLAGS.worker is None:
        print(f"Machine: {machine()}; {FLAGS.workers} workers", flush=True)
        _workers.run_workers(__file__, sys.argv[1:], FLAGS.out, FLAGS.workers)
    elif FLAGS.worker is None:
        print(f"Machine: {machine()}", flush=True)
    rows = run(FLAGS.models, x, y, eps_values, settings, FLAGS.out, earlier,
               worker=FLAGS.worker)
    if FLAGS.worker is None:
        print(markdown(rows, settings))


if __name__ == "__main__":
    define_flags()
    app.run(main)
