r"""Threat models and the penalty's dual norm, on MNIST.

Trains the paper's CNN (``keras_gradreg.models.mnist_cnn``) with natural
training, N-FGSM in L-inf and L2, and Logit-reg with the dual norm of each
threat model (L1 for L-inf, L2 for L2, L-inf for L1), then evaluates each
with the standard AutoAttack ensemble in L-inf, L2 and L1:

    python benchmarks/norms.py train natural --data_dir ../shared/data/mnist
    python benchmarks/norms.py evaluate natural --data_dir ../shared/data/mnist \
        --examples 1000
    python benchmarks/norms.py report

``train NAME`` saves ``RUNS/NAME.keras`` (each epoch is checkpointed in
``RUNS/backup/NAME``, so an interrupted fit goes on from its last epoch).
``evaluate NAME`` runs ``keras_gradreg.RobustnessReport`` in worst-case
mode per threat norm (resumable in ``RUNS/eval/NAME/NORM/chunks``) and
appends one JSON line per norm and eps to ``--jsonl``; ``report`` prints
the Markdown table from those lines (the last line of each cell wins).

Logit-reg's c per dual norm, by the first-order bound: an eps_p
perturbation changes the logit margin by at most eps_p * ||g||_q, so the
penalty c_q * ||g||_q weighs that bound at the threat radius as the L1
recipe does at L-inf 0.1 when c_q = 0.03 * eps_p / 0.1, with eps_p the
middle of each norm's radii: L2 1.5 (c 0.45), L1 7.5 (c 2.25).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _recipes  # noqa: E402

from keras_gradreg.evaluation import markdown_table  # noqa: E402

L1_C = 0.03  # Logit-reg L1 on MNIST (_recipes.recipe_table)
RADII = {"linf": (0.1, 0.2), "l2": (1.0, 1.5, 2.0), "l1": (5.0, 10.0)}
DUAL = {"linf": "l1", "l2": "l2", "l1": "linf"}
MIDDLE = {"linf": 0.1, "l2": 1.5, "l1": 7.5}  # the radius each c is set at
NFGSM = "AdversarialTrainingModel.n_fgsm"


def dual_c(threat: str) -> float:
    """Logit-reg's c for the dual norm of ``threat`` (the module's rule).

    Example:
        >>> round(dual_c("l2"), 6), round(dual_c("l1"), 6)
        (0.45, 2.25)
    """
    return L1_C * MIDDLE[threat] / MIDDLE["linf"]


RECIPES = {
    "natural": _recipes.Recipe("natural"),
    "nfgsm_linf_eps0.1": _recipes.Recipe(NFGSM, kwargs={"eps": 0.1}),
    "nfgsm_l2_eps1.5": _recipes.Recipe(NFGSM, kwargs={"eps": 1.5, "attack_norm": "l2"}),
    "nfgsm_l2_eps1.5+logit_l2_c0.45": _recipes.Recipe(NFGSM, kwargs={
        "eps": 1.5, "attack_norm": "l2", "regularizer": "logit_margin",
        "norm": "l2", "c": dual_c("l2")}),
    **{f"logit_{DUAL[t]}_c{dual_c(t):g}": _recipes.Recipe("gradreg", kwargs={
        "regularizer": "logit_margin", "norm": DUAL[t], "c": dual_c(t)})
       for t in ("linf", "l2", "l1")},
}
SETTINGS = {"epochs": 3, "batch_size": 50, "learning_rate": 1e-3, "seed": 0}
COLUMNS = [("clean", None)] + [(n, e) for n in ("linf", "l2", "l1") for e in RADII[n]]


def _model_path(runs: str, name: str) -> str:
    return os.path.join(runs, f"{name}.keras")


def train(args) -> None:
    from keras_gradreg import datasets
    x, y = datasets.to_arrays(datasets.load("mnist", "train", data_dir=args.data_dir),
                              limit=args.train_size)
    settings = dict(SETTINGS, epochs=args.epochs)
    os.makedirs(args.runs, exist_ok=True)
    network, seconds, final = _recipes.train(
        RECIPES[args.name], x, y, settings,
        backup_dir=os.path.join(args.runs, "backup", args.name))
    network.save(_model_path(args.runs, args.name))
    with open(os.path.join(args.runs, f"{args.name}.train.json"), "w") as handle:
        json.dump({"model": args.name, "recipe": RECIPES[args.name].as_dict(),
                   "settings": settings, "images": len(x), "seconds": seconds,
                   "train_final": final}, handle)
    print(f"{args.name}: {seconds['fit']:.0f} s, {final}", flush=True)


def evaluate(args) -> None:
    import keras

    import keras_gradreg
    from keras_gradreg import datasets
    from keras_gradreg import evaluation
    x, y = datasets.to_arrays(datasets.load("mnist", "test", data_dir=args.data_dir),
                              limit=args.examples)
    model = keras.models.load_model(_model_path(args.runs, args.name))
    for norm in args.norms.split(","):
        start = time.perf_counter()
        report = keras_gradreg.RobustnessReport(
            {args.name: model}, {"autoattack": ("autoattack", {"seed": 0})},
            RADII[norm], batch_size=args.chunk, verbose=1,
            worst_case_only=True, norm=norm)
        folder = os.path.join(args.runs, "eval", args.name, norm)
        results = report.run((x, y), resume_dir=os.path.join(folder, "chunks"))
        results.save(folder)
        seconds = time.perf_counter() - start
        clean = float(results.correct(args.name).mean())
        lines = [{"model": args.name, "norm": norm, "eps": eps, "images": len(x),
                  "clean": 100 * clean,
                  "robust": 100 * float(results.correct(args.name, "worst_case",
                                                        eps).mean()),
                  "broken_by": results.broken_by(args.name, "autoattack", eps),
                  "attack": "autoattack standard, seed 0", "wall_s": seconds,
                  "machine": evaluation.environment()} for eps in RADII[norm]]
        with open(args.jsonl, "a") as handle:
            handle.writelines(json.dumps(line) + "\n" for line in lines)
        print(results.to_markdown(), f"({seconds:.0f} s)", flush=True)


def table(lines) -> str:
    """The Markdown table of robust accuracy (%): a row per model (in the order of
    ``RECIPES``), a column per threat norm and eps, clean first; a missing cell is ``-``."""
    cells, clean, images = {}, {}, {}
    for line in lines:
        cells[(line["model"], line["norm"], float(line["eps"]))] = line["robust"]
        clean[line["model"]] = line["clean"]
        images.setdefault(line["model"], set()).add(line["images"])
    names = {"linf": "Linf", "l2": "L2", "l1": "L1"}
    header = ["model", "images"] + [
        "clean" if e is None else f"{names[n]} {e:g}" for n, e in COLUMNS]
    rows = []
    order = list(RECIPES)
    for model in sorted(clean, key=lambda m: order.index(m) if m in order else len(order)):
        row = [model, "/".join(str(n) for n in sorted(images[model])),
               f"{clean[model]:.1f}"]
        for norm, eps in COLUMNS[1:]:
            value = cells.get((model, norm, eps))
            row.append("-" if value is None else f"{value:.1f}")
        rows.append(row)
    return "\n".join(markdown_table(header, rows)) + "\n"


def report(args) -> None:
    with open(args.jsonl) as handle:
        print(table([json.loads(text) for text in handle if text.strip()]), end="")


def parser() -> argparse.ArgumentParser:
    here = os.path.dirname(os.path.abspath(__file__))
    parse = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parse.add_argument("command", choices=["train", "evaluate", "report"])
    parse.add_argument("name", nargs="?", choices=sorted(RECIPES))
    parse.add_argument("--data_dir", default=None, help="Local MNIST folder.")
    parse.add_argument("--runs", default="runs/norms", help="Models and evaluations.")
    parse.add_argument("--examples", type=int, default=1000, help="First N test images.")
    parse.add_argument("--jsonl", default=os.path.join(here, "measured", "norms.jsonl"))
    parse.add_argument("--norms", default="linf,l2,l1", help="Threat norms to evaluate.")
    parse.add_argument("--chunk", type=int, default=50, help="Images per resumable chunk.")
    parse.add_argument("--epochs", type=int, default=SETTINGS["epochs"])
    parse.add_argument("--train_size", type=int, default=None, help="First N training images.")
    return parse


def main(argv=None) -> None:
    args = parser().parse_args(argv)
    if args.command != "report" and args.name is None:
        parser().error(f"{args.command} needs a model NAME: {sorted(RECIPES)}")
    {"train": train, "evaluate": evaluate, "report": report}[args.command](args)


if __name__ == "__main__":
    main()
