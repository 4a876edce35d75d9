r"""AutoAttack on saved models: resumable, in shards, beside earlier results.

Runs the AutoAttack ensemble (``keras_gradreg.attacks.autoattack``: APGD-CE,
APGD-T, FAB-T, Square, each on the images still robust) on the first
``--num_examples`` images through ``keras_gradreg.RobustnessReport`` in
worst-case mode, chunks of ``--chunk`` images:

* every finished chunk is kept in ``OUT/<model>/chunks/`` (atomically); a
  rerun with the same settings goes on where the last one stopped;
* ``--shard i/n`` attacks every n-th chunk from the i-th and saves its part
  to ``OUT/<model>/shard-i-of-n/``; run n processes side by side (a shell
  loop, ``xargs -P``, a SLURM array: benchmarks/README.md), then once with
  ``--merge n`` to join the parts (``Results.merge``);
* the whole run (or the merge) saves ``OUT/<model>/`` (the library's
  results.json / .md / .csv, correct.npz: robust accuracy per eps, the
  share each part of the ensemble broke, the black-box masking check) and
  ``OUT/results.jsonl``: per model and eps, which images were correct
  clean and after the ensemble, as bits (the robustness-per-cost report
  reads it beside the grid's worst case);
* ``--compare DIR`` (an earlier ``Results`` on the same first images, e.g.
  an example's ``--out``): the earlier per-example worst case beside
  AutoAttack's, and the images the earlier attacks broke that AutoAttack
  missed (should be none), in ``OUT/compare.md``.

    python benchmarks/autoattack_eval.py --data_dir ../shared/data/mnist \
        --models runs/mnist/natural.keras,runs/mnist/logit_reg.keras \
        --num_examples 1000 --chunk 100 --out runs/autoattack
"""

from __future__ import annotations

import glob
import json
import os
import sys
from typing import Dict, List, Optional, Sequence

import keras
import numpy as np
from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import keras_gradreg  # noqa: E402
from keras_gradreg import datasets  # noqa: E402

from _machine import machine  # noqa: E402

FLAGS = flags.FLAGS
ATTACK = "autoattack"


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """The script's flags (defined only when it runs as a script)."""
    into = {"flag_values": flag_values}
    flags.DEFINE_list("models", None, "Saved .keras models, each named by its "
                      "file name without the extension.", **into)
    flags.DEFINE_string("dataset", "mnist", "A name of keras_gradreg.datasets.", **into)
    flags.DEFINE_string("data_dir", None, "Local dataset folder (else tfds).", **into)
    flags.DEFINE_string("split", "test", "Dataset split.", **into)
    flags.DEFINE_list("eps", ["0.1", "0.2", "0.3"], "L-inf radii.", **into)
    flags.DEFINE_integer("num_examples", 1000, "The first N images of the split.", **into)
    flags.DEFINE_integer("chunk", 100, "Images per resumable chunk.", **into)
    flags.DEFINE_enum("version", "standard", ["standard", "fast", "rand"],
                      "AutoAttack version.", **into)
    flags.DEFINE_integer("seed", 0, "Seed of the random attacks.", **into)
    flags.DEFINE_string("out", None, "Output folder.", **into)
    flags.DEFINE_string("shard", None, "i/n: attack every n-th chunk from the "
                        "i-th (0-based) and save this part only.", **into)
    flags.DEFINE_integer("merge", None, "Join the n shards' parts (attacking "
                         "nothing) and write the results.", **into)
    flags.DEFINE_string("compare", None, "Folder of earlier keras_gradreg "
                        "Results on the same first images.", **into)
    flags.mark_flags_as_required(["models", "out"], flag_values=flag_values)


def model_names(paths: Sequence[str]) -> List[str]:
    """Each model's name: its file name without the extension.

    Example:
        >>> model_names(["runs/a/natural.keras", "b/logit_reg.keras"])
        ['natural', 'logit_reg']
    """
    names = [os.path.splitext(os.path.basename(path))[0] for path in paths]
    if len(set(names)) != len(names):
        raise app.UsageError(f"Two models share a file name: {names}.")
    return names


def evaluate(name: str, model, x, y, eps_values, settings: dict, out: str,
             shard: Optional[tuple] = None) -> "keras_gradreg.Results":
    """AutoAttack on ``model`` (worst-case mode, resumable; a part with
    ``shard``), saved to ``OUT/<name>/`` (a shard: its ``shard-i-of-n/``)."""
    options = {"version": settings["version"], "seed": settings["seed"]}
    report = keras_gradreg.RobustnessReport(
        {name: model}, {ATTACK: (ATTACK, options)}, eps_values,
        batch_size=settings["chunk"], verbose=1, worst_case_only=True)
    results = report.run((x, y), resume_dir=os.path.join(out, name, "chunks"),
                         shard=shard)
    folder = os.path.join(out, name)
    if shard is not None:
        folder = os.path.join(folder, f"shard-{shard[0]}-of-{shard[1]}")
    results.save(folder)
    return results


def merge(name: str, out: str, count: int) -> "keras_gradreg.Results":
    """Joins the ``count`` shards' parts of ``name`` and saves the whole."""
    folders = sorted(glob.glob(os.path.join(out, name, f"shard-*-of-{count}")))
    if len(folders) != count:
        raise app.UsageError(f"{name}: {len(folders)} of {count} shards are "
                             "done; run the others first.")
    results = keras_gradreg.Results.merge(
        [keras_gradreg.Results.load(folder) for folder in folders])
    results.save(os.path.join(out, name))
    return results


def _bits(correct: np.ndarray) -> str:
    return "".join("1" if value else "0" for value in correct)


def lines(name: str, results, settings: dict) -> List[dict]:
    """Per eps: the images correct clean and after the ensemble, as bits,
    and the share of the images each part of the ensemble broke."""
    return [{"model": name, "eps": eps, "images": len(results.correct(name)),
             "clean": _bits(results.correct(name)),
             "robust": _bits(results.correct(name, "worst_case", eps)),
             "broken_by": results.broken_by(name, ATTACK, eps),
             "settings": {k: settings[k] for k in ("version", "seed", "chunk")}}
            for eps in results.eps_values]


def compare(everything: Dict[str, "keras_gradreg.Results"], earlier) -> str:
    """AutoAttack beside ``earlier``'s per-example worst case on the same
    images: the worst of both, and the images only the earlier attacks broke.

    Raises:
        ValueError: If the clean predictions differ (not the same images or
            model).
    """
    rows = ["| model | eps | AutoAttack | earlier worst case | both | missed |",
            "|---|---|---|---|---|---|"]
    for name, results in everything.items():
        if name not in earlier.model_names:
            continue
        clean = results.correct(name)
        if not np.array_equal(earlier.correct(name)[:len(clean)], clean):
            raise ValueError(f"{name}: the clean predictions differ from the "
                             "earlier results': not the same images or model.")
        for eps in results.eps_values:
            if f"{eps:g}" not in {f"{e:g}" for e in earlier.eps_values}:
                continue
            robust = results.correct(name, "worst_case", eps)
            worst = earlier.correct(name, "worst_case", eps)[:len(clean)]
            rows.append(f"| {name} | {eps:g} | {100 * robust.mean():.1f} | "
                        f"{100 * worst.mean():.1f} | {100 * (robust & worst).mean():.1f}"
                        f" | {int(np.sum(robust & ~worst))} |")
    return "\n".join(rows) + "\n"


def _shard(text: Optional[str]) -> Optional[tuple]:
    if text is None:
        return None
    index, _, count = text.partition("/")
    if not (index.isdigit() and count.isdigit() and int(index) < int(count)):
        raise app.UsageError(f"--shard must be i/n with 0 <= i < n, got {text!r}.")
    return int(index), int(count)


def main(argv):
    del argv
    settings = {"version": FLAGS.version, "seed": FLAGS.seed, "chunk": FLAGS.chunk}
    names, shard = model_names(FLAGS.models), _shard(FLAGS.shard)
    eps_values = [float(e) for e in FLAGS.eps]
    print(f"Machine: {machine()}", flush=True)
    everything = {}
    if FLAGS.merge:
        everything = {name: merge(name, FLAGS.out, FLAGS.merge) for name in names}
    else:
        x, y = datasets.to_arrays(datasets.load(FLAGS.dataset, FLAGS.split,
                                                data_dir=FLAGS.data_dir),
                                  limit=FLAGS.num_examples)
        for name, path in zip(names, FLAGS.models):
            everything[name] = evaluate(name, keras.models.load_model(path), x,
                                        y, eps_values, settings, FLAGS.out, shard)
            print(everything[name].to_markdown(), flush=True)
    if shard is not None:
        return  # the parts are joined by --merge
    path = os.path.join(FLAGS.out, "results.jsonl")
    kept = []  # the lines of other models stay
    if os.path.exists(path):
        with open(path) as handle:
            kept = [text for text in handle
                    if text.strip() and json.loads(text)["model"] not in everything]
    with open(path, "w") as handle:
        handle.writelines(kept + [json.dumps(line) + "\n" for name, results in
                                  everything.items()
                                  for line in lines(name, results, settings)])
    if FLAGS.compare:
        text = compare(everything, keras_gradreg.Results.load(FLAGS.compare))
        with open(os.path.join(FLAGS.out, "compare.md"), "w") as handle:
            handle.write(text)
        print(text)


if __name__ == "__main__":
    define_flags()
    app.run(main)
