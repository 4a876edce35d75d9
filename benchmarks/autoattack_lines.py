r"""AutoAttack's results as lines for the robustness-per-cost report, and a comparison.

``long_runs.sh`` runs the standard ensemble with ``keras-gradreg evaluate --attacks
autoattack --worst_case_only --resume DIR --shard i/n`` and joins the shards with
``keras-gradreg merge`` into ``OUT/<model>/``. This script reads those folders and writes
``OUT/results.jsonl``: per model and eps, which images were correct clean and after the
ensemble, as bits, and the share of them each part of the ensemble broke (the report
reads them beside the grid's worst case). With ``--compare DIR`` (an earlier ``Results``
on the same first images, e.g. an example's ``--out``) it writes ``OUT/compare.md``:
AutoAttack beside the earlier per-example worst case, and the images only the earlier
attacks broke (should be none).

    python benchmarks/autoattack_lines.py --out runs/mnist_10ep_aa/autoattack \
        --models natural,logit_reg --compare runs/mnist_10ep_aa
"""

from __future__ import annotations

import json
import os
import sys
from typing import Dict, List

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import keras_gradreg  # noqa: E402
from keras_gradreg import evaluation  # noqa: E402
from keras_gradreg.evaluation import markdown_table as table  # noqa: E402

from _common import bits  # noqa: E402

FLAGS = flags.FLAGS
ATTACK = "autoattack"
MODEL = "model"  # keras-gradreg evaluate's name of its model


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """Defines the script's flags in ``flag_values`` (under ``__main__`` only)."""
    on = {"flag_values": flag_values}
    flags.DEFINE_string("out", None, "The folder of the models' merged results.", **on)
    flags.DEFINE_list("models", None, "The models: folders OUT/<model>/.", **on)
    flags.DEFINE_string("compare", None, "Folder of earlier keras_gradreg Results on the "
                        "same first images, its models named as --models.", **on)
    flags.mark_flags_as_required(["models", "out"], flag_values=flag_values)


def lines(name: str, results: keras_gradreg.Results) -> List[dict]:
    """Per eps: the images correct clean and after the ensemble, as bits, and the share
    of the images each part of the ensemble broke."""
    clean = results.correct(MODEL)
    return [{"model": name, "eps": eps, "images": len(clean), "clean": bits(clean),
             "robust": bits(results.correct(MODEL, "worst_case", eps)),
             "broken_by": results.broken_by(MODEL, ATTACK, eps),
             "settings": results.settings["attacks"][ATTACK]["kwargs"]}
            for eps in results.eps_values]


def compare(everything: Dict[str, keras_gradreg.Results], earlier) -> str:
    """AutoAttack beside ``earlier``'s per-example worst case on the same images
    (``evaluation.compare_worst_case``): the worst of both, and the images only the
    earlier attacks broke."""
    cells = []
    for name, results in everything.items():
        if name in earlier.model_names:
            cells += [[name, row["eps"]]
                      + [f"{100 * row[k]:.1f}" for k in ("results", "earlier", "both")]
                      + [str(row["missed"])]
                      for row in evaluation.compare_worst_case(results, earlier, {MODEL: name})]
    return "\n".join(table(["model", "eps", "AutoAttack", "earlier worst case", "both",
                            "missed"], cells)) + "\n"


def main(argv, flag_values: flags.FlagValues = FLAGS):
    """Writes OUT/results.jsonl (and OUT/compare.md) from the merged results."""
    del argv
    out = flag_values.out
    everything = {name: keras_gradreg.Results.load(os.path.join(out, name))
                  for name in flag_values.models}
    path = os.path.join(out, "results.jsonl")
    kept = []  # the lines of other models stay
    if os.path.exists(path):
        with open(path) as handle:
            kept = [text for text in handle
                    if text.strip() and json.loads(text)["model"] not in everything]
    with open(path, "w") as handle:
        handle.writelines(kept + [json.dumps(line) + "\n" for name, results in
                                  everything.items() for line in lines(name, results)])
    if flag_values.compare:
        text = compare(everything, keras_gradreg.Results.load(flag_values.compare))
        with open(os.path.join(out, "compare.md"), "w") as handle:
            handle.write(text)
        print(text)


if __name__ == "__main__":
    define_flags()
    app.run(main)
