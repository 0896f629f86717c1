"""The objective-comparison experiment on a toy budget: every stage runs on the real data, an
interrupted run resumes and a finished one is skipped, settings mismatches are refused, and
results.json / results.md / plot.png are written."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from electra_tf import flops
from electra_tf.errors import UserError
from electra_tf.experiments import objective_comparison as comparison

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]

# The tiny preset shrunk to seconds per stage.
TOY_HPARAMS = {
    "hidden_size": 64,
    "embedding_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 1,
    "num_attention_heads": 1,
    "num_warmup_steps": 2,
    "train_batch_size": 8,
}


def _options(tmp_path, data_dir, glue_dir, **overrides):
    values = dict(
        pretrain_data=str(data_dir),
        glue_data_dir=str(glue_dir),
        output_dir=str(tmp_path / "out"),
        config="electra_tiny",
        hparams=TOY_HPARAMS,
        budget_electra_steps=6,
        fractions=(0.5, 1.0),
        tasks=("sts-b",),
        num_seeds=2,
        max_train_examples=48,
        max_eval_examples=64,
        finetune_steps=2,
        log_every_steps=1000,
    )
    values.update(overrides)
    return comparison.ComparisonOptions(**values)


class _Interrupted(Exception):
    pass


def _h5_arrays(path) -> dict:
    import h5py

    arrays = {}
    with h5py.File(path, "r") as handle:
        handle.visititems(
            lambda name, item: arrays.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset) else None
        )
    return arrays


def test_toy_experiment_runs_every_stage_resumes_and_reports(tmp_path, mechanics_data, shared_data, monkeypatch):
    options = _options(tmp_path, mechanics_data["train_dir"], shared_data / "glue")
    out = pathlib.Path(options.output_dir)
    calls = {"pretrain": [], "finetune": []}
    real_pretrain, real_finetune = comparison.pretrain_segment, comparison.finetune_encoder
    interrupt_after = {"finetune": 2}

    def counting_pretrain(options_, plan, segment):
        calls["pretrain"].append(segment.encoder_name)
        return real_pretrain(options_, plan, segment)

    def counting_finetune(options_, plan, encoder_name, init_checkpoint, tasks):
        if len(calls["finetune"]) == interrupt_after["finetune"]:
            raise _Interrupted(encoder_name)
        calls["finetune"].append(encoder_name)
        return real_finetune(options_, plan, encoder_name, init_checkpoint, tasks)

    monkeypatch.setattr(comparison, "pretrain_segment", counting_pretrain)
    monkeypatch.setattr(comparison, "finetune_encoder", counting_finetune)

    # The plan: equal FLOPs; the budget is 6 ELECTRA steps; the masked LM is cheaper per step.
    plan = comparison.make_plan(options)
    electra_step = flops.training_step_flops(plan.configs["electra"])["total"]
    bert_step = flops.training_step_flops(plan.configs["bert"])["total"]
    assert plan.budget_flops == 6 * electra_step
    assert bert_step < electra_step
    assert [s.step for s in plan.segments["electra"]] == [3, 6]
    bert_total = int(6 * electra_step // bert_step)
    assert [s.step for s in plan.segments["bert"]] == [round(bert_total / 2), bert_total]
    assert all(s.flops <= plan.budget_flops for s in plan.segments["bert"])

    # First run: interrupted during the third fine-tuning (after all pretraining).
    with pytest.raises(_Interrupted):
        comparison.run_comparison(options)
    assert sorted(calls["pretrain"]) == sorted(
        ["electra_step_3", "electra_step_6", f"bert_step_{round(bert_total / 2)}", f"bert_step_{bert_total}"]
    )
    # The full-budget snapshots are fine-tuned first.
    assert calls["finetune"] == ["electra_step_6", f"bert_step_{bert_total}"]
    partial = json.loads((out / "results.json").read_text())
    assert partial["complete"] is False
    assert "Incomplete" in (out / "results.md").read_text()

    # A checkpoint whose snapshot was lost (killed between the two) is snapshotted again from
    # the checkpoint, without training.
    lost = out / "snapshots" / "bert" / f"step_{bert_total}"
    before = _h5_arrays(lost / "backbone.weights.h5")
    for path in lost.iterdir():
        path.unlink()
    lost.rmdir()

    interrupt_after["finetune"] = -1
    calls["pretrain"].clear()
    calls["finetune"].clear()
    results = comparison.run_comparison(options)
    assert calls["pretrain"] == [f"bert_step_{bert_total}"]
    after = _h5_arrays(lost / "backbone.weights.h5")
    assert sorted(after) == sorted(before) and len(before) > 10
    for name, value in before.items():
        np.testing.assert_array_equal(after[name], value, err_msg=name)
    assert calls["finetune"] == ["random_init", "electra_step_3", f"bert_step_{round(bert_total / 2)}"]

    # Results: five encoders, medians of the two seeds, STS-B's score.
    assert results["complete"] is True
    names = {e["name"]: e for e in results["encoders"]}
    assert set(names) == {
        "electra_step_3",
        "electra_step_6",
        f"bert_step_{round(bert_total / 2)}",
        f"bert_step_{bert_total}",
        "random_init",
    }
    for encoder in results["encoders"]:
        task = encoder["tasks"]["sts-b"]
        assert len(task["trial_scores"]) == 2 and task["seeds"] == [12345, 12346]
        assert task["median_score"] == pytest.approx(
            sorted(task["trial_scores"])[0] / 2 + sorted(task["trial_scores"])[1] / 2
        )
        assert encoder["glue_average"] == pytest.approx(task["median_score"])
        task_results = json.loads((out / "finetune" / encoder["name"] / "sts-b" / "results.json").read_text())
        assert task_results["model"]["pretrained"] is (encoder["name"] != "random_init")
    assert names["electra_step_6"]["pretraining_flops"] == pytest.approx(6 * electra_step)
    assert names[f"bert_step_{bert_total}"]["pretraining_flops"] == pytest.approx(bert_total * bert_step)
    saved = json.loads((out / "results.json").read_text())
    assert saved["encoders"] == json.loads(json.dumps(results["encoders"]))
    assert saved["flops_per_step"]["electra"]["total"] == electra_step

    table = (out / "results.md").read_text()
    assert "Incomplete" not in table
    assert "| objective | budget fraction | steps | pretraining FLOPs" in table
    random_row = next(line for line in table.splitlines() if line.startswith("| no pretraining"))
    assert random_row.endswith(f"| {names['random_init']['glue_average']:.1f} |")
    assert sum(line.startswith("| ELECTRA") for line in table.splitlines()) == 2

    png = (out / "plot.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    import matplotlib.image

    image = matplotlib.image.imread(str(out / "plot.png"))
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 300

    # A finished experiment is skipped entirely; one lost fine-tuning result is redone alone.
    calls["pretrain"].clear()
    calls["finetune"].clear()
    marker = out / "finetune" / "electra_step_3" / "sts-b" / "results.json"
    marker.unlink()
    comparison.run_comparison(options)
    assert calls == {"pretrain": [], "finetune": ["electra_step_3"]}
    markers = {path: path.stat().st_mtime_ns for path in out.glob("finetune/*/*/results.json")}
    comparison.run_comparison(options)
    assert calls == {"pretrain": [], "finetune": ["electra_step_3"]}
    assert {path: path.stat().st_mtime_ns for path in markers} == markers

    # Another experiment in the same directory is refused, naming the difference.
    with pytest.raises(UserError, match=r"experiment\.json.*fractions"):
        comparison.run_comparison(
            _options(tmp_path, mechanics_data["train_dir"], shared_data / "glue", fractions=(0.25, 1.0))
        )
    with pytest.raises(UserError, match=r"num_seeds: 2 -> 3"):
        comparison.run_comparison(_options(tmp_path, mechanics_data["train_dir"], shared_data / "glue", num_seeds=3))
    assert json.loads((out / "results.json").read_text())["complete"] is True


def test_bad_settings_are_one_line_errors(tmp_path, mechanics_data, shared_data):
    def plan(**overrides):
        return comparison.make_plan(_options(tmp_path, mechanics_data["train_dir"], shared_data / "glue", **overrides))

    cases = [
        (dict(fractions=(0.5,)), "must include 1"),
        (dict(fractions=(0.0, 1.0)), "outside"),
        (dict(objectives=("electra", "gpt")), "unknown objective 'gpt'"),
        (dict(budget_flops=1e12), "exactly one of"),
        (dict(budget_electra_steps=None, budget_flops=10.0), "less than one electra step"),
        (dict(tasks=("squad-v1.1",)), "not a GLUE task"),
        (dict(hparams=dict(TOY_HPARAMS, electra_objective=False)), "set by --objectives"),
        (dict(num_seeds=0), "--num_seeds"),
        (dict(flops_convention="bogus"), "--flops_convention"),
    ]
    for overrides, expected in cases:
        with pytest.raises(UserError, match=expected):
            plan(**overrides)
    # ELECTRA 15% is ELECTRA with the discriminator loss on masked positions only: same
    # network, so the same FLOPs and steps.
    ablation = plan(objectives=("electra", "electra_15"))
    assert ablation.configs["electra_15"].disc_loss_masked_only
    assert not ablation.configs["electra"].disc_loss_masked_only
    assert (
        ablation.settings["pretraining"]["electra_15"]["steps"] == ablation.settings["pretraining"]["electra"]["steps"]
    )
    assert ablation.configs["electra_15"].disc_bias_prior == 0.5  # the reference's zero bias
    # A generator of 1/2 the width costs more per step, so it gets fewer steps for the budget.
    half = plan(objectives=("electra", "electra_gen_half"), budget_electra_steps=20)
    assert half.configs["electra_gen_half"].generator_hidden_size == 0.5
    assert half.configs["electra"].generator_hidden_size == 0.25
    assert (
        half.settings["pretraining"]["electra_gen_half"]["steps"][-1]
        < half.settings["pretraining"]["electra"]["steps"][-1]
        == 20
    )
    # The MLM ablations: their own main-network heads, so their own step counts for the budget.
    mlm = plan(objectives=("electra", "replace_mlm", "all_tokens_mlm"), budget_electra_steps=20)
    assert mlm.configs["replace_mlm"].discriminator_task == "replace_mlm"
    assert mlm.configs["all_tokens_mlm"].discriminator_task == "all_tokens_mlm"
    for name, config in mlm.configs.items():
        step_flops = flops.training_step_flops(config)["total"]
        assert mlm.settings["pretraining"][name]["steps"][-1] == int(mlm.budget_flops // step_flops), name
    # Predicting every token costs an MLM head on every token: fewest steps for the budget.
    steps = {name: mlm.settings["pretraining"][name]["steps"][-1] for name in mlm.configs}
    assert steps["all_tokens_mlm"] < min(steps["electra"], steps["replace_mlm"]), steps
    # A replaced-rate prior for all tokens becomes the masked positions' rate for ELECTRA 15%.
    prior = plan(objectives=("electra", "electra_15"), hparams=dict(TOY_HPARAMS, disc_bias_prior=0.15))
    assert prior.configs["electra"].disc_bias_prior == pytest.approx(0.15)
    assert prior.configs["electra_15"].disc_bias_prior == pytest.approx(0.85)
    # The paper convention budgets with the reference script's count.
    paper = plan(flops_convention="paper")
    assert paper.budget_flops == pytest.approx(6 * flops.paper_training_step_flops(paper.configs["electra"]))
    # Changed fine-tuning settings reuse the snapshots only once the old fine-tuning results
    # have been moved away by the user; changed pretraining settings are always refused.
    experiment = tmp_path / "experiment"
    settings = json.loads(json.dumps(plan().settings))
    comparison.check_or_write_settings(str(experiment), settings, overwrite=False)
    (experiment / "finetune").mkdir()
    retuned = dict(settings, num_seeds=5, tasks=["rte"])
    with pytest.raises(
        UserError,
        match=r"num_seeds: 2 -> 5\); the pretraining settings match, so "
        r"moving .*finetune aside reuses the snapshots",
    ):
        comparison.check_or_write_settings(str(experiment), retuned, overwrite=False)
    (experiment / "finetune").rmdir()
    comparison.check_or_write_settings(str(experiment), retuned, overwrite=False)
    assert json.loads((experiment / "experiment.json").read_text()) == retuned
    with pytest.raises(UserError, match=r"budget_flops") as error:
        comparison.check_or_write_settings(str(experiment), dict(retuned, budget_flops=1.0), overwrite=False)
    assert "pretraining settings match" not in str(error.value)
    # A non-empty directory that is not an experiment is never written into.
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty"):
        comparison.check_or_write_settings(str(tmp_path / "busy"), {"a": 1}, overwrite=False)


def test_cli_rejects_an_unknown_objective_in_one_line(tmp_path, mechanics_data, shared_data):
    env = dict(
        os.environ,
        TF_CPP_MIN_LOG_LEVEL="2",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    )
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "electra_tf.experiments.compare_objectives",
            "--pretrain_data",
            str(mechanics_data["train_dir"]),
            "--glue_data_dir",
            str(shared_data / "glue"),
            "--output_dir",
            str(tmp_path / "out"),
            "--budget_electra_steps",
            "4",
            "--objectives",
            "electra,replace_lm",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    errors = [line for line in process.stderr.splitlines() if "error:" in line]
    assert process.returncode == 2, process.stderr[-2000:]
    assert "Traceback" not in process.stderr
    assert len(errors) == 1 and "unknown objective 'replace_lm'" in errors[0]
    assert "replace_mlm, all_tokens_mlm" in errors[0]  # the valid names, ablations included
    assert not (tmp_path / "out").exists()


def test_merge_puts_runs_of_one_budget_side_by_side(tmp_path):
    from electra_tf.experiments.merge_comparisons import merge_directories

    results = REPO_ROOT / "results"
    electra_bert = str(results / "compare_objectives_mini_3000")
    all_tokens = str(results / "compare_objectives_mini_3000_all_tokens_mlm")
    paths = merge_directories([electra_bert, all_tokens], str(tmp_path / "merged"))
    merged = json.loads((tmp_path / "merged" / "results.json").read_text())
    assert merged["settings"]["objectives"] == ["electra", "bert", "all_tokens_mlm"]
    names = [encoder["name"] for encoder in merged["encoders"]]
    assert len(names) == len(set(names)) == 3 + 3 + 3 + 1  # one no-pretraining baseline
    assert set(merged["flops_per_step"]) == {"electra", "bert", "all_tokens_mlm"}
    table = (tmp_path / "merged" / "results.md").read_text()
    assert "| All-Tokens MLM (predicts every token, with copying) | 1 | 1575 |" in table
    assert "| BERT (masked LM) | 1 | 3247 |" in table
    assert (tmp_path / "merged" / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(paths) == 3
    with pytest.raises(UserError, match="already exists; pass --overwrite"):
        merge_directories([electra_bert, all_tokens], str(tmp_path / "merged"))
    with pytest.raises(UserError, match="objective bert is already in an earlier input"):
        merge_directories([electra_bert, electra_bert], str(tmp_path / "again"))
    # A run with another schedule is refused even at the same budget.
    other_schedule = json.loads((results / "compare_objectives_mini_3000_all_tokens_mlm" / "results.json").read_text())
    pretraining = other_schedule["settings"]["pretraining"]["all_tokens_mlm"]
    pretraining["config"]["learning_rate"] = 5e-4
    (tmp_path / "schedule.json").write_text(json.dumps(other_schedule))
    with pytest.raises(UserError, match="pretraining config learning_rate = 0.0005 differs"):
        merge_directories([electra_bert, str(tmp_path / "schedule.json")], str(tmp_path / "schedule_merged"))
    with pytest.raises(UserError, match=r"mini: pretraining budget [0-9.e+]+ FLOPs differs"):
        merge_directories([electra_bert, str(results / "compare_objectives_mini")], str(tmp_path / "other"))
    # The 1/2-width generator is an objective of its own, run in its own directory: its
    # generator_hidden_size selects it and may differ; the same size under another objective is
    # a different model and is refused.
    wider = json.loads((results / "compare_objectives_mini_3000_all_tokens_mlm" / "results.json").read_text())
    wider["settings"]["pretraining"]["all_tokens_mlm"]["config"]["generator_hidden_size"] = 0.5
    (tmp_path / "wider.json").write_text(json.dumps(wider))
    with pytest.raises(UserError, match="pretraining config generator_hidden_size = 0.5 differs"):
        merge_directories([electra_bert, str(tmp_path / "wider.json")], str(tmp_path / "wider_merged"))
    half = json.loads(json.dumps(wider).replace('"all_tokens_mlm"', '"electra_gen_half"'))
    half["settings"]["pretraining"]["electra_gen_half"]["config"].update(
        comparison.OBJECTIVES["electra_gen_half"], disc_loss_masked_only=False
    )
    (tmp_path / "half.json").write_text(json.dumps(half))
    merge_directories([electra_bert, str(tmp_path / "half.json")], str(tmp_path / "half_merged"))
    merged = json.loads((tmp_path / "half_merged" / "results.json").read_text())
    assert merged["settings"]["objectives"] == ["electra", "bert", "electra_gen_half"]


def test_snapshots_and_settings_on_ram_paths():
    """A gs:// --output_dir (ram:// here): experiment.json written, checked and replaced with
    --overwrite; a snapshot saved over an unfinished one (no snapshot.json), whole, and read."""
    from electra_tf import artifacts, fileio
    from electra_tf import config as config_lib
    from electra_tf.pretraining_objective import ElectraPretrainer

    output_dir = "ram://compare_objectives_test/out"
    comparison.check_or_write_settings(output_dir, {"budget_flops": 1, "tasks": ["sts-b"]}, overwrite=False)
    comparison.check_or_write_settings(output_dir, {"budget_flops": 1, "tasks": ["sts-b"]}, overwrite=False)
    with pytest.raises(UserError, match="holds another experiment"):
        comparison.check_or_write_settings(output_dir, {"budget_flops": 2, "tasks": ["sts-b"]}, overwrite=False)
    segment = comparison.Segment("electra", 0.5, 3, 1e9)
    target = comparison.snapshot_dir(output_dir, segment)
    # An interrupted earlier save: the folder moved in, snapshot.json never written.
    fileio.makedirs(target)
    fileio.write_text_atomic(fileio.join(target, "stale.weights.h5"), "old")
    assert comparison.read_snapshot(output_dir, segment) is None
    # And a killed one, which left only its temporary folder.
    killed = fileio.temporary_name(target)
    fileio.makedirs(killed)
    fileio.write_text_atomic(fileio.join(killed, "discriminator.weights.h5"), "half")

    config = config_lib.load_config(
        "electra_tiny", dict(TOY_HPARAMS, hidden_size=16, embedding_size=16, intermediate_size=32, max_seq_length=16)
    )
    record = {"objective": "electra", "step": 3}
    comparison.save_snapshot(ElectraPretrainer(config, seed=1), target, record)
    assert comparison.read_snapshot(output_dir, segment) == record
    names = set(fileio.files_below(target))
    assert "stale.weights.h5" not in names
    assert {artifacts.CONFIG_FILE, artifacts.DISCRIMINATOR_WEIGHTS_FILE, comparison.SNAPSHOT_MARKER} <= names
    assert artifacts.read_config(target).hidden_size == 16
    assert [name.rstrip("/") for name in fileio.listdir(os.path.dirname(target))] == ["step_3"]

    comparison.check_or_write_settings(output_dir, {"budget_flops": 2, "tasks": ["sts-b"]}, overwrite=True)
    assert not fileio.exists(fileio.join(output_dir, "snapshots"))
    assert fileio.read_json(fileio.join(output_dir, comparison.SETTINGS_FILE))["budget_flops"] == 2


def test_smallest_helpful_fraction_needs_the_margin_over_no_pretraining():
    from electra_tf.experiments import comparison_report as report

    def encoder(objective, fraction, step, average):
        return {
            "name": f"{objective}_step_{step}",
            "objective": objective,
            "fraction": fraction,
            "step": step,
            "pretraining_flops": 1e12 * step,
            "pretraining_seconds": 0.0,
            "tasks": {},
            "glue_average": average,
        }

    results = {
        "settings": {"objectives": ["electra", "bert"]},
        "encoders": [
            encoder("bert", 1.0, 400, 55.0),
            encoder("bert", 0.25, 100, 52.9),  # +2.9: not enough
            encoder("bert", 0.5, 200, 53.0),  # +3.0: the smallest that clears it
            encoder("electra", 0.5, 200, None),  # not fine-tuned yet
            encoder("electra", 1.0, 400, 51.0),
            encoder("random_init", 0.0, 0, 50.0),
        ],
    }
    assert report.smallest_helpful_fraction(results, "bert")["step"] == 200
    assert report.smallest_helpful_fraction(results, "bert", margin=5.0)["step"] == 400
    assert report.smallest_helpful_fraction(results, "electra") is None
    lines = report._against_no_pretraining(results)
    assert lines[0] == "Against no pretraining (GLUE avg 50.0), by at least 3 points:"
    assert "- BERT (masked LM): first at fraction 0.5 (step 200, 2e+14 FLOPs, +3.0)" in lines
    assert "- ELECTRA (replaced token detection): at none of the 1 finished fractions (best +1.0 at 1)" in lines
    # Without a finished baseline nothing can be said.
    results["encoders"][-1]["glue_average"] = None
    assert report.smallest_helpful_fraction(results, "bert") is None
    assert report._against_no_pretraining(results) == []
