"""The helpers of examples/_experiment.py and sweep_c.py on hand-made
numbers: attack settings, baselines, the paper's models, and the c sweep's
scores, choice, grid and held-out validation."""

import json

import keras
import pytest

import keras_gradreg
from keras_gradreg import paper

from _examples import _run_sweep  # tests/ is on sys.path
from _examples import experiment
from _examples import sweep_c


def test_extra_attacks_use_the_paper_clip_and_budget():
    settings = paper.SETTINGS["cifar10"]
    specs = experiment.extra_attacks(settings, ["pgd", "apgd"], 10, 2, 0)
    assert sorted(specs) == ["apgd_ce", "apgd_dlr", "pgd"]
    assert specs["apgd_dlr"] == ("apgd", {
        "steps": 10, "restarts": 2, "seed": 0, "clip_min": 0.0,
        "clip_max": 255.0, "loss": "dlr"})
    assert experiment.extra_attacks(settings, [], 10, 1, 0) == {}
    with pytest.raises(ValueError, match="Unknown extra attacks"):
        experiment.extra_attacks(settings, ["deepfool"], 10, 1, 0)


def test_paper_attacks_match_section_4():
    mnist_cw = experiment.paper_attacks(paper.SETTINGS["mnist"])["cw"]
    assert mnist_cw == ("cw", {"step_size": 0.05, "steps": 10, "clip_min": 0.0,
                               "clip_max": 1.0, "confidence": 50.0})
    speech_bim = experiment.paper_attacks(
        paper.SETTINGS["speech_commands"])["bim"]
    assert speech_bim == ("bim", {"step_size": 0.002, "steps": 8,
                                  "clip_min": None, "clip_max": None})


def test_adversarial_training_baselines_follow_their_recipes():
    settings = paper.SETTINGS["mnist"]
    fgsm_rs, pgd, nfgsm = experiment.adversarial_training_models(
        settings, ["fgsm_rs", "pgd", "nfgsm"], train_eps=0.3, pgd_steps=10)
    assert (fgsm_rs.name, pgd.name, nfgsm.name) == (
        "fgsm_rs_at", "pgd_at", "nfgsm_at")
    assert fgsm_rs.info["steps"] == 1
    assert fgsm_rs.info["step_size"] == pytest.approx(0.375)  # 1.25 * 0.3
    assert pgd.info["step_size"] == pytest.approx(0.075)  # 2.5 * 0.3 / 10
    assert nfgsm.info["start_radius"] == pytest.approx(0.6)  # 2 * 0.3
    assert nfgsm.info["project"] is False
    for spec in (fgsm_rs, pgd, nfgsm):  # the record is what was built
        model = spec.build()
        assert isinstance(model, keras_gradreg.AdversarialTrainingModel)
        config = model.get_config()
        for key, value in spec.info.items():
            if key not in ("kind", "recipe"):
                assert config[key] == pytest.approx(value), (spec.name, key)
        keras.backend.clear_session(free_memory=False)
    with pytest.raises(ValueError, match="Unknown baseline"):
        experiment.adversarial_training_models(settings, ["trades"], 0.3, 10)
    with pytest.raises(ValueError, match="pgd_steps"):
        experiment.adversarial_training_models(settings, ["pgd"], 0.3, 0)


def test_paper_models_are_configured_as_named():
    natural, xent, logit = experiment.paper_models(
        paper.SETTINGS["mnist"], c_xent=2.0, c_logit=0.5, norm_logit="l1")
    xent_model, logit_model = xent.build(), logit.build()
    assert xent_model.c == 2.0 and logit_model.c == 0.5
    assert xent_model.get_config()["regularizer"] == "cross_entropy"
    assert logit_model.get_config()["norm"] == "l1"
    assert not isinstance(natural.build(), keras_gradreg.GradRegModel)


def test_split_name_and_parse_list():
    assert experiment.split_name("train", None) == "train"
    assert experiment.split_name("test", 50) == "test[:50]"
    with pytest.raises(ValueError, match="positive"):
        experiment.split_name("test", 0)
    assert experiment.parse_list(" pgd, ,apgd ") == ["pgd", "apgd"]
    assert experiment.parse_list("") == []


def _sweep_entry(c, clean, fgsm, bim):
    entry = {"c": c, "clean": clean, "fgsm": {"0.1": fgsm[0], "0.2": fgsm[1]},
             "bim": {"0.1": bim[0], "0.2": bim[1]}}
    entry["score"] = sweep_c.score(entry)
    return entry


def test_sweep_scores_and_choice():
    weak = _sweep_entry(0.1, 0.99, (0.5, 0.2), (0.3, 0.0))
    strong = _sweep_entry(1.0, 0.97, (0.8, 0.6), (0.7, 0.5))
    too_costly = _sweep_entry(10.0, 0.90, (0.9, 0.9), (0.9, 0.9))
    assert weak["score"] == pytest.approx((0.5 + 0.2 + 0.3 + 0.0) / 4)
    entries = [weak, strong, too_costly]
    assert sweep_c.choose(entries, natural_clean=0.99, max_clean_drop=0.03) == 1.0
    assert sweep_c.choose(entries, natural_clean=0.99, max_clean_drop=0.1) == 10.0
    assert sweep_c.choose(entries[1:], 0.99, 0.01) is None


def test_sweep_grid():
    assert sweep_c.grid(None, 0.03) == pytest.approx([0.003, 0.009, 0.03, 0.09, 0.3])
    assert sweep_c.grid(["0", "2.5"], 1.0) == [0.0, 2.5]
    with pytest.raises(ValueError, match=">= 0"):
        sweep_c.grid(["-1"], 1.0)
    with pytest.raises(ValueError, match="numbers"):
        sweep_c.grid(["big"], 1.0)


@pytest.mark.large
def test_sweep_holds_out_validation_from_training(tmp_path, mnist_dir,
                                                  monkeypatch):
    _run_sweep(dataset="mnist", data_dir=str(mnist_dir),
               out=str(tmp_path), train_size=100,
               val_size=20, epochs=1, c_xent_grid=["1"], c_logit_grid=["0.03"])
    sweep = json.loads((tmp_path / "sweep.json").read_text())
    assert [e["c"] for e in sweep["logit_reg"]] == [0.03]
    assert set(sweep["chosen"]) == {"xent_reg", "logit_reg"}
    assert sweep["settings"]["val_examples"] == 20
    assert sweep["settings"]["train_split"] == "train[:-20]"
    assert (tmp_path / "sweep.md").read_text().startswith("# c sweep on mnist")
