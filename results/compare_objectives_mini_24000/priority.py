"""Issue 17 part 3: fine-tunes chosen encoders of one stage first, task by task across them.

The budget decision (does the masked LM beat no pretraining by 3 points?) needs the masked LM's
full-budget snapshot and the random-init baseline; the stage drivers would reach them only after
ELECTRA's five snapshots. This runs them first, alternating the encoders within each task so that a
session cut short still has whole tasks for both. It takes compare_objectives' flags (the stage's
exact command line) plus --encoders, writes into the same output folders with the same code
(PYTHONPATH=/work/runs/code_part3), and the stage drivers later skip what it finished.
"""

from absl import flags

from electra_tf import cli
from electra_tf.experiments import (
    compare_objectives,
    comparison_report,
    objective_comparison,
)

flags.DEFINE_list("encoders", [], "Encoder names to fine-tune, in this order within each task.")
flags.DEFINE_bool("pretrain", False, "First pretrain the snapshots not saved yet, as the stage would.")
flags.DEFINE_bool("finetune", True, "Fine-tune the chosen encoders (--nofinetune: only pretrain up to them).")
flags.DEFINE_list(
    "only_tasks",
    [],
    "Fine-tune only these of the stage's tasks (default all), e.g. to split one encoder's tasks"
    " between two one-thread lanes.",
)
FLAGS = flags.FLAGS


def main(argv):
    # compare_objectives' own main builds the options from the flags; only its last call, the
    # whole experiment, is replaced, so these options are the stage's to the letter.
    captured = []
    objective_comparison.run_comparison = captured.append
    compare_objectives.main(argv)
    (options,) = captured
    plan = objective_comparison.make_plan(options)
    # Refuses if these flags are not the stage's (experiment.json).
    objective_comparison.check_or_write_settings(options.output_dir, plan.settings, False)
    encoders = dict(objective_comparison._encoders_in_order(options, plan))
    unknown = [name for name in FLAGS.encoders if name not in encoders]
    if unknown:
        raise SystemExit(f"--encoders: {unknown} not in this stage: {sorted(encoders)}")
    # Only the chosen encoders' snapshots (and, for --pretrain, the earlier segments of their runs)
    # are needed: random init fine-tunes before any pretraining. A run is pretrained only as far
    # as its last chosen snapshot that is missing: a kept one (keep_snapshot.sh) needs nothing
    # pretrained again, and its run's earlier snapshots wait until a later one is wanted.
    wanted = set(FLAGS.encoders)
    snapshots = {}
    for segments in plan.segments.values():
        records = [objective_comparison.read_snapshot(options.output_dir, segment) for segment in segments]
        missing = [i for i, s in enumerate(segments) if s.encoder_name in wanted and records[i] is None]
        last = max(missing, default=-1)
        for index, (segment, record) in enumerate(zip(segments, records)):
            if record is None and index <= last:
                if not FLAGS.pretrain:
                    raise SystemExit(f"{segment.encoder_name}: no snapshot yet; run with --pretrain")
                objective_comparison.log(f"pretraining to step {segment.step} ({segment.fraction:g})")
                record = objective_comparison.pretrain_segment(options, plan, segment)
            if record is not None:
                snapshots[segment.encoder_name] = record
    if not FLAGS.finetune:
        objective_comparison.log("pretrained up to: " + ", ".join(FLAGS.encoders))
        return
    unknown = [task for task in FLAGS.only_tasks if task not in plan.tasks]
    if unknown:
        raise SystemExit(f"--only_tasks: {unknown} not in this stage: {list(plan.tasks)}")
    for task in [t for t in plan.tasks if not FLAGS.only_tasks or t in FLAGS.only_tasks]:
        for name in FLAGS.encoders:
            if task in objective_comparison.finished_tasks(options.output_dir, name, [task]):
                objective_comparison.log(f"{name}: {task} already fine-tuned, skipping")
                continue
            objective_comparison.log(f"fine-tuning {name} on {task} x {options.num_seeds} seed(s)")
            objective_comparison.finetune_encoder(options, plan, name, encoders[name], [task])
            results = comparison_report.collect_results(options.output_dir, plan, snapshots)
            comparison_report.write_reports(options.output_dir, results)
    objective_comparison.log("priority encoders done: " + ", ".join(FLAGS.encoders))


if __name__ == "__main__":
    cli.run(main)
