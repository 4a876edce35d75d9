"""Two evaluations of one model on the same examples, per example.

A strong attack run later (AutoAttack, say) should break every example an
earlier report's attacks broke: :func:`compare_worst_case` puts the two
per-example worst cases side by side and counts the examples only the
earlier attacks broke (``missed``; more than none means the strong attack
is weaker there, a reason to look for masking or a bug).
"""

from __future__ import annotations

from typing import List, Mapping, Optional

import numpy as np

from keras_gradreg.evaluation._results import Results
from keras_gradreg.evaluation._tables import eps_key


def compare_worst_case(results: Results, earlier: Results,
                       models: Optional[Mapping[str, str]] = None) -> List[dict]:
    """Per model and shared eps: the worst case of ``results``, of
    ``earlier``, of both, and the examples only ``earlier`` broke.

    ``results`` may cover the first examples of ``earlier`` only (a long
    attack on a prefix of a test set): the comparison is on those.

    Args:
        results: The later evaluation.
        earlier: The earlier one, on the same examples in the same order
            (or more of them).
        models: ``{name in results: name in earlier}``; default: the names
            both hold.

    Returns:
        One dict per model and eps both evaluated, in ``results``' order:
        ``model`` (the name in ``results``), ``eps`` (its key, e.g.
        ``"0.1"``), ``examples``, the accuracies ``results``, ``earlier``
        and ``both`` (robust to both), and ``missed``: how many examples
        ``results`` left correct that ``earlier`` broke.

    Raises:
        ValueError: If a model's clean predictions differ between the two
            (not the same model or examples), if ``earlier`` has fewer
            examples, or if a name in ``models`` is in neither.

    Example:
        >>> import numpy as np
        >>> def made(attack, robust):
        ...     clean = np.array([1, 1, 1, 0], bool)
        ...     return Results.from_correct(
        ...         {("clean", "m"): clean,
        ...          ("white_box", "m", attack, "0.1"): np.array(robust, bool)},
        ...         ["m"], [attack], [0.1], 0.1,
        ...         {"attacks": {attack: {}}, "worst_case_only": True})
        >>> row, = compare_worst_case(made("autoattack", [1, 0, 0, 0]),
        ...                           made("pgd", [0, 1, 0, 0]))
        >>> row["results"], row["earlier"], row["both"], row["missed"]
        (0.25, 0.25, 0.0, 1)
    """
    pairs = dict(models) if models is not None else {
        name: name for name in results.model_names if name in earlier.model_names}
    for name, other in pairs.items():
        if name not in results.model_names or other not in earlier.model_names:
            raise ValueError(f"compare_worst_case: {name!r} must be a model of the "
                             f"results {results.model_names} and {other!r} one of the "
                             f"earlier {earlier.model_names}.")
    keys = {eps_key(eps) for eps in earlier.eps_values}
    rows = []
    for name, other in pairs.items():
        clean = results.correct(name)
        count = len(clean)
        before = earlier.correct(other)
        if len(before) < count:
            raise ValueError(f"compare_worst_case: the earlier results hold "
                             f"{len(before)} examples, fewer than {count}.")
        if not np.array_equal(before[:count], clean):
            raise ValueError(f"{name}: the clean predictions differ from the earlier "
                             f"{other}'s: not the same examples or model.")
        for eps in results.eps_values:
            if eps_key(eps) not in keys:
                continue
            now = results.correct(name, "worst_case", eps)
            then = earlier.correct(other, "worst_case", eps)[:count]
            rows.append({"model": name, "eps": eps_key(eps), "examples": count,
                         "results": float(now.mean()), "earlier": float(then.mean()),
                         "both": float((now & then).mean()),
                         "missed": int(np.sum(now & ~then))})
    return rows
