"""The objective comparison's outputs: results.json, a Markdown table and the FLOPs plot.

``collect_results`` reads what the experiment has finished so far (snapshot markers and
run_finetuning's per-task results.json files) into one dict; ``write_reports`` writes it as
results.json, results.md (objective x pretraining FLOPs -> per-task medians and the GLUE-style
average, and per objective the smallest budget that beats no pretraining by HELPFUL_MARGIN GLUE
points) and plot.png (GLUE dev average against pretraining FLOPs, log x, one line per
objective, the randomly initialised encoder as a horizontal line: the paper's Figure 1 shape).
Partial results are written too, marked incomplete, so a long run can be looked at while it goes.
"""

from __future__ import annotations

import io
import json
import os
from typing import Optional

from electra_tf import fileio, finetuning_metrics
from electra_tf import flops as flops_lib
from electra_tf.errors import UserError

RESULTS_JSON = "results.json"
RESULTS_MARKDOWN = "results.md"
PLOT_PNG = "plot.png"

OBJECTIVE_LABELS = {
    "electra": "ELECTRA (replaced token detection)",
    "electra_gen_half": "ELECTRA, generator 1/2 of the width",
    "bert": "BERT (masked LM)",
    "electra_15": "ELECTRA 15% (disc. loss on masked positions only)",
    "replace_mlm": "Replace MLM (generator samples instead of [MASK])",
    "all_tokens_mlm": "All-Tokens MLM (predicts every token, with copying)",
    "random_init": "no pretraining",
}
FLOPS_CONVENTION_TEXT = {
    "matmul": "3 x forward matmul FLOPs",
    "paper": "counted as the paper's flops_computation.py does",
}
SCORE_DEFINITIONS = {
    "sst-2": "accuracy",
    "rte": "accuracy",
    "qnli": "accuracy",
    "wnli": "accuracy",
    "mnli": "matched accuracy",
    "mrpc": "(accuracy + F1) / 2",
    "qqp": "(accuracy + F1) / 2",
    "sts-b": "(Pearson + Spearman) / 2",
    "cola": "Matthews corr.",
}
TASK_LABELS = {
    "sst-2": "SST-2",
    "mrpc": "MRPC",
    "cola": "CoLA",
    "sts-b": "STS-B",
    "rte": "RTE",
    "qnli": "QNLI",
    "qqp": "QQP",
    "mnli": "MNLI",
    "wnli": "WNLI",
}


def _task_summary(results: dict) -> dict:
    trials = results.get("trials", [])
    return {
        "headline_metric": results.get("headline_metric"),
        "median_score": results["median_score"],
        "median": results["median"],
        "trial_scores": [trial["metrics"]["score"] for trial in trials],
        "seeds": [trial["seed"] for trial in trials],
        "finetune_seconds": round(sum(trial.get("train_seconds", 0.0) for trial in trials), 1),
        "train_examples": results.get("data", {}).get("splits", {}).get("train", {}).get("used"),
    }


def collect_results(output_dir: str, plan, snapshots: dict) -> dict:
    """Everything finished so far, as the dict written to results.json."""
    # Cycle: objective_comparison imports this module.
    from electra_tf.experiments import objective_comparison as comparison

    encoders = []
    seconds_so_far: dict[str, float] = {}
    for objective, segments in plan.segments.items():
        for segment in segments:
            record = snapshots.get(segment.encoder_name) or comparison.read_snapshot(output_dir, segment)
            if record is None:
                continue
            seconds_so_far[objective] = seconds_so_far.get(objective, 0.0) + record.get("segment_seconds", 0.0)
            encoders.append(
                {
                    "name": segment.encoder_name,
                    "objective": objective,
                    "fraction": segment.fraction,
                    "step": segment.step,
                    "pretraining_flops": segment.flops,
                    "pretraining_seconds": round(seconds_so_far[objective], 1),
                    "final_train_metrics": record.get("train_metrics", {}),
                }
            )
    if plan.settings.get("include_random_init", True):
        encoders.append(
            {
                "name": comparison.RANDOM_INIT,
                "objective": comparison.RANDOM_INIT,
                "fraction": 0.0,
                "step": 0,
                "pretraining_flops": 0.0,
                "pretraining_seconds": 0.0,
            }
        )
    complete = True
    for encoder in encoders:
        done = comparison.finished_tasks(output_dir, encoder["name"], plan.tasks)
        encoder["tasks"] = {task: _task_summary(done[task]) for task in plan.tasks if task in done}
        encoder["complete"] = len(done) == len(plan.tasks)
        encoder["glue_average"] = (
            finetuning_metrics.glue_average({task: value["median_score"] for task, value in encoder["tasks"].items()})
            if encoder["complete"]
            else None
        )
        complete = complete and encoder["complete"]
    expected = sum(len(segments) for segments in plan.segments.values())
    complete = complete and len([e for e in encoders if e["step"]]) == expected
    return {
        "complete": complete,
        "settings": plan.settings,
        "budget_flops": plan.budget_flops,
        "tasks": list(plan.tasks),
        "num_seeds": plan.settings["num_seeds"],
        "flops_per_step": {objective: parts for objective, parts in plan.step_flops.items()},
        "paper_convention_flops_per_step": {
            objective: flops_lib.paper_training_step_flops(config) for objective, config in plan.configs.items()
        },
        "encoders": encoders,
    }


def write_reports(output_dir: str, results: dict) -> list[str]:
    """Writes results.json, results.md and plot.png (each replaced atomically); their paths."""
    paths = []
    path = os.path.join(output_dir, RESULTS_JSON)
    _write_atomic(path, json.dumps(results, indent=2, sort_keys=True) + "\n")
    paths.append(path)
    path = os.path.join(output_dir, RESULTS_MARKDOWN)
    _write_atomic(path, markdown_table(results))
    paths.append(path)
    path = os.path.join(output_dir, PLOT_PNG)
    plot(results, path)
    paths.append(path)
    return paths


# Settings that must agree for runs to share one table and plot (the pretraining corpus is
# compared by size: the same TFRecords may sit at different paths on different machines).
MERGE_MUST_MATCH = ("config", "flops_convention", "tasks", "num_seeds", "finetuning", "pretrain_data_examples")
# Config keys that may differ between objectives (they select the objective), besides those
# that an objective's own definition sets (objective_comparison.OBJECTIVES: electra_gen_half's
# generator_hidden_size); every other key of the resolved pretraining configs (sizes, schedule,
# batch, vocabulary) must agree.
OBJECTIVE_CONFIG_KEYS = ("electra_objective", "discriminator_task", "disc_loss_masked_only", "disc_bias_prior")


def _shared_config(results: dict) -> dict:
    # Imported here: objective_comparison imports this module for its reports.
    from electra_tf.experiments.objective_comparison import OBJECTIVES

    objective = results["settings"]["objectives"][0]
    config = results["settings"]["pretraining"][objective]["config"]
    selecting = set(OBJECTIVE_CONFIG_KEYS) | set(OBJECTIVES.get(objective, {}))
    return {key: value for key, value in config.items() if key not in selecting}


def merge_results(results_list: list, sources: list) -> dict:
    """One results dict from several experiments' results.json (objectives side by side).

    The driver refuses to add an objective to a finished experiment's directory; running the
    new objective in its own directory with the same settings and merging is how it is added.
    Raises UserError naming the first source whose budget or settings differ, or that repeats
    an objective.
    """
    first, first_source = results_list[0], sources[0]
    merged = json.loads(json.dumps(first))
    merged["settings"]["merged_from"] = list(sources)
    seen = set(first["settings"]["objectives"])
    for results, source in zip(results_list[1:], sources[1:]):
        budget = results["budget_flops"]
        if abs(budget - first["budget_flops"]) > 1e-9 * first["budget_flops"]:
            raise UserError(
                f"{source}: pretraining budget {budget:.4g} FLOPs differs from "
                f"{first_source}'s {first['budget_flops']:.4g}; merge only runs of "
                "one budget"
            )
        for key in MERGE_MUST_MATCH:
            if results["settings"].get(key) != first["settings"].get(key):
                raise UserError(
                    f"{source}: setting {key} = "
                    f"{json.dumps(results['settings'].get(key))} differs from "
                    f"{first_source}'s {json.dumps(first['settings'].get(key))}"
                )
        ours, theirs = _shared_config(results), _shared_config(first)
        for key in sorted(set(ours) & set(theirs)):
            if ours[key] != theirs[key]:
                raise UserError(
                    f"{source}: pretraining config {key} = {json.dumps(ours[key])} "
                    f"differs from {first_source}'s {json.dumps(theirs[key])}"
                )
        repeated = seen.intersection(results["settings"]["objectives"])
        if repeated:
            raise UserError(
                f"{source}: objective {sorted(repeated)[0]} is already in an earlier input; merge each objective once"
            )
        seen.update(results["settings"]["objectives"])
        settings = merged["settings"]
        settings["objectives"] += results["settings"]["objectives"]
        settings["fractions"] = sorted(set(settings["fractions"]) | set(results["settings"]["fractions"]))
        settings["pretraining"].update(results["settings"]["pretraining"])
        has_baseline = any(e["step"] == 0 for e in merged["encoders"])
        merged["encoders"] += [e for e in results["encoders"] if e["step"] != 0 or not has_baseline]
        settings["include_random_init"] = any(e["step"] == 0 for e in merged["encoders"])
        for key in ("flops_per_step", "paper_convention_flops_per_step"):
            merged[key].update(results[key])
        merged["complete"] = merged["complete"] and results["complete"]
    return merged


# A pretraining budget "helps" when its encoder's GLUE average beats the randomly initialised
# encoder's by at least this many points (issue 17's rule for choosing a budget worth comparing
# objectives at: below it, seed noise on these small dev sets can decide the order).
HELPFUL_MARGIN = 3.0


def no_pretraining_average(results: dict) -> Optional[float]:
    """The randomly initialised encoder's GLUE average, or None until it is fine-tuned on every task."""
    return next(
        (e["glue_average"] for e in results["encoders"] if e["step"] == 0 and e["glue_average"] is not None), None
    )


def smallest_helpful_fraction(results: dict, objective: str, margin: float = HELPFUL_MARGIN) -> Optional[dict]:
    """The smallest-budget encoder of ``objective`` whose GLUE average beats no pretraining by ``margin``.

    Only encoders with every task fine-tuned count. Returns that encoder's dict from
    results["encoders"], or None when no fraction measured so far clears the margin or there is
    no finished randomly initialised encoder to compare with.
    """
    baseline = no_pretraining_average(results)
    if baseline is None:
        return None
    for encoder in sorted(results["encoders"], key=lambda e: e["step"]):
        if encoder["objective"] == objective and encoder["step"] and encoder["glue_average"] is not None:
            if encoder["glue_average"] - baseline >= margin:
                return encoder
    return None


def _against_no_pretraining(results: dict) -> list[str]:
    """One sentence per objective: where it first clears HELPFUL_MARGIN over random init, if anywhere."""
    baseline = no_pretraining_average(results)
    if baseline is None:
        return []
    lines = [f"Against no pretraining (GLUE avg {baseline:.1f}), by at least {HELPFUL_MARGIN:g} points:", ""]
    for objective in results["settings"]["objectives"]:
        label = OBJECTIVE_LABELS.get(objective, objective)
        finished = [e for e in results["encoders"] if e["objective"] == objective and e["glue_average"] is not None]
        if not finished:
            lines.append(f"- {label}: no encoder fine-tuned yet")
            continue
        helpful = smallest_helpful_fraction(results, objective)
        if helpful is None:
            best = max(finished, key=lambda e: e["glue_average"])
            lines.append(
                f"- {label}: at none of the {len(finished)} finished fractions "
                f"(best {best['glue_average'] - baseline:+.1f} at {best['fraction']:g})"
            )
        else:
            lines.append(
                f"- {label}: first at fraction {helpful['fraction']:g} (step {helpful['step']}, "
                f"{helpful['pretraining_flops']:.3g} FLOPs, {helpful['glue_average'] - baseline:+.1f})"
            )
    return lines + [""]


def _write_atomic(path: str, text: str) -> None:
    fileio.write_text_atomic(path, text)


def _format_score(value: Optional[float]) -> str:
    return "–" if value is None else f"{value:.1f}"


def markdown_table(results: dict) -> str:
    """The experiment's report as Markdown: settings, one row per pretrained encoder, per-seed scores.

    Args:
      results: the results.json dict (keys "settings", "tasks", "encoders", "complete",
        "budget_flops", "num_seeds", "flops_per_step", ...).

    Returns:
      The results.md text, ending in a newline; flagged as incomplete when results["complete"] is
      False.
    """
    settings = results["settings"]
    tasks = results["tasks"]
    task_names = [TASK_LABELS.get(task, task) for task in tasks]
    finetuning = settings["finetuning"]
    lines = ["# Pretraining objectives at equal compute", ""]
    if not results["complete"]:
        lines += [
            "**Incomplete: the experiment is still running or was interrupted; the rows below are what has finished.**",
            "",
        ]
    lines += [
        f"Model `{settings['config']}`; pretraining budget {results['budget_flops']:.3g} training "
        f"FLOPs per objective ({FLOPS_CONVENTION_TEXT[settings.get('flops_convention', 'matmul')]}"
        f", generator included for ELECTRA); corpus "
        f"`{settings['pretrain_data']}` ({settings.get('pretrain_data_examples')} sequences). "
        f"GLUE dev, median of {results['num_seeds']} fine-tuning seed(s) per task"
        + (
            f", at most {finetuning['max_train_examples']} training examples per task"
            if finetuning.get("max_train_examples")
            else ""
        )
        + (f", {finetuning['steps']} steps" if finetuning.get("steps") else "")
        + (f", {finetuning['epochs']:g} epochs" if finetuning.get("epochs") else "")
        + ". Scores x100: "
        + ", ".join(f"{TASK_LABELS.get(task, task)} {SCORE_DEFINITIONS.get(task, 'score')}" for task in tasks)
        + ".",
        "",
        "| objective | budget fraction | steps | pretraining FLOPs | pretraining time | "
        + " | ".join(task_names)
        + " | GLUE avg |",
        "|---|---:|---:|---:|---:|" + "---:|" * len(tasks) + "---:|",
    ]
    for encoder in _sorted_encoders(results["encoders"]):
        cells = [
            OBJECTIVE_LABELS.get(encoder["objective"], encoder["objective"]),
            f"{encoder['fraction']:g}" if encoder["step"] else "–",
            str(encoder["step"]) if encoder["step"] else "0",
            f"{encoder['pretraining_flops']:.3g}" if encoder["step"] else "0",
            f"{encoder['pretraining_seconds'] / 60:.1f} min" if encoder["step"] else "–",
        ]
        cells += [_format_score(encoder["tasks"].get(task, {}).get("median_score")) for task in tasks]
        cells.append(_format_score(encoder["glue_average"]))
        lines.append("| " + " | ".join(cells) + " |")
    lines += [""] + _against_no_pretraining(results)
    lines += ["Per-seed scores (the median is the reported number):", ""]
    for encoder in _sorted_encoders(results["encoders"]):
        parts = []
        for task in tasks:
            summary = encoder["tasks"].get(task)
            if summary:
                scores = ", ".join(f"{score:.1f}" for score in summary["trial_scores"])
                parts.append(f"{TASK_LABELS.get(task, task)} [{scores}]")
        if parts:
            lines.append(f"- {encoder['name']}: " + "; ".join(parts))
    lines += [
        "",
        "Training FLOPs per step: "
        + "; ".join(f"{objective} {parts['total']:.3g}" for objective, parts in results["flops_per_step"].items())
        + ".",
    ]
    return "\n".join(lines) + "\n"


def _sorted_encoders(encoders: list) -> list:
    order = {"electra": 0, "bert": 1}
    return sorted(encoders, key=lambda e: (e["step"] == 0, order.get(e["objective"], 2), e["objective"], e["step"]))


def plot(results: dict, path: str) -> None:
    """GLUE dev average against pretraining FLOPs (log x), one line per objective."""
    # Slow to import, and only the plot needs it; the backend must be set before pyplot loads.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    figure, axes = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    markers = {
        "electra": "o",
        "electra_gen_half": "P",
        "bert": "s",
        "electra_15": "D",
        "replace_mlm": "v",
        "all_tokens_mlm": "^",
    }
    plotted = False
    for objective in results["settings"]["objectives"]:
        points = sorted(
            (e["pretraining_flops"], e["glue_average"])
            for e in results["encoders"]
            if e["objective"] == objective and e["glue_average"] is not None
        )
        if points:
            axes.plot(
                [x for x, _ in points],
                [y for _, y in points],
                marker=markers.get(objective, "^"),
                label=OBJECTIVE_LABELS.get(objective, objective),
            )
            plotted = True
    baseline = no_pretraining_average(results)
    if baseline is not None:
        axes.axhline(baseline, color="gray", linestyle="--", label=OBJECTIVE_LABELS["random_init"])
    axes.set_xscale("log")
    axes.set_xlabel("pretraining FLOPs")
    axes.set_ylabel("GLUE dev score (median over seeds, task average)")
    tasks = ", ".join(TASK_LABELS.get(task, task) for task in results["tasks"])
    axes.set_title(f"{results['settings']['config']}: {tasks}", fontsize=9)
    if plotted or baseline:
        axes.legend(fontsize=8)
    else:
        axes.text(0.5, 0.5, "no finished results yet", ha="center", va="center", transform=axes.transAxes)
    # Ticks at the planned snapshots, over a fixed range: matplotlib's own log ticks crowd into
    # unreadable labels when the points span less than a decade (or are a single point).
    budget = results["budget_flops"]
    fractions = sorted(results["settings"]["fractions"])
    axes.set_xlim(budget * fractions[0] / 1.6, budget * 1.6)
    axes.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axes.set_xticks(
        [budget * fraction for fraction in fractions], [f"{budget * fraction:.2g}" for fraction in fractions]
    )
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    # Rendered in memory: matplotlib writes local files only, and the folder may be gs://.
    image = io.BytesIO()
    figure.savefig(image, format="png")
    plt.close(figure)
    fileio.write_bytes_atomic(path, image.getvalue())
