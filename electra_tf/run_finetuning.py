"""Fine-tune ELECTRA on GLUE / SQuAD / your own CSV or TSV (--task=custom):

  python -m electra_tf.run_finetuning --task=sst-2,mrpc --data_dir=glue \\
      --init_checkpoint=model_dir/pretrained --vocab_file=vocab.txt --output_dir=out

See electra_tf/finetuning.py for what is written into --output_dir.
"""

from __future__ import annotations

from absl import flags

from electra_tf import cli
from electra_tf.errors import UserError

FLAGS = flags.FLAGS

flags.DEFINE_string(
    "task",
    None,
    "Task or comma-separated tasks: cola, sst-2, mrpc, sts-b, qqp, "
    "mnli, qnli, rte, wnli, squad-v1.1, squad-v2.0, ner, chunk, custom (your CSV/TSV "
    "files: --train_file, --text_column, ...).",
)
flags.DEFINE_string(
    "data_dir",
    None,
    "GLUE folders (CoLA/, SST-2/, ... with train/dev/test.tsv) "
    "and/or the SQuAD JSON files, and/or NER/ and CHUNK/ with CoNLL train/dev/test.txt.",
)
flags.DEFINE_bool(
    "use_tfds",
    False,
    "Read the data from TensorFlow Datasets (glue/*, squad) "
    "instead of --data_dir (needs a network connection the first time).",
)
flags.DEFINE_string("tfds_data_dir", None, "Where TFDS keeps its datasets (default: ~/tensorflow_datasets).")
flags.DEFINE_string(
    "init_checkpoint",
    None,
    "The 'pretrained' directory written by run_pretraining "
    "(config.json + backbone.weights.h5). Without it the model starts from random "
    "weights: the no-pretraining baseline.",
)
flags.DEFINE_string("config", "electra_small", "Config preset or JSON, used only without --init_checkpoint.")
flags.DEFINE_string("hparams", None, "JSON object (or a path to one) overriding config keys, e.g. dropout.")
flags.DEFINE_string("vocab_file", None, "WordPiece vocabulary (default: vocab.txt beside the checkpoint).")
flags.DEFINE_string("output_dir", None, "Where results, predictions and fine-tuned weights go.")
flags.DEFINE_bool("overwrite", False, "Replace the results of tasks already in --output_dir.")
flags.DEFINE_integer("num_trials", 1, "Fine-tune this many seeds per task; the median is reported.")
flags.DEFINE_integer("seed", 12345, "Seed of the first trial (trial k uses seed + k).")
flags.DEFINE_float(
    "learning_rate", None, "Peak learning rate (default by model size: 3e-4 Small, 1e-4 Base, 5e-5 Large)."
)
flags.DEFINE_float("layerwise_lr_decay", None, "Layer-wise learning-rate decay (default 0.8 Small/Base, 0.9 Large).")
flags.DEFINE_enum(
    "layerwise_decay_formula",
    "reference",
    ["reference", "paper"],
    "reference: the reference code's layer-wise rates (top layer d^2, embeddings "
    "d^(n+2)), with which its published numbers were made; paper: the paper's "
    "(top layer d, embeddings d^(n+1)).",
)
flags.DEFINE_float("num_train_epochs", None, "Epochs (default: 10 RTE/STS-B, 2 SQuAD, else 3).")
flags.DEFINE_integer("num_train_steps", None, "Train exactly this many steps instead of epochs.")
flags.DEFINE_float("warmup_proportion", 0.1, "Fraction of the steps with linear warm-up.")
flags.DEFINE_float("weight_decay_rate", 0.0, "Decoupled weight decay (paper: 0; reference code: 0.01).")
flags.DEFINE_integer("train_batch_size", 32, "Global training batch size.")
flags.DEFINE_integer("eval_batch_size", 64, "Prediction batch size.")
flags.DEFINE_integer("max_seq_length", None, "Sequence length (default 128 GLUE and ner, 256 chunk, 512 SQuAD).")
flags.DEFINE_integer("doc_stride", 128, "SQuAD: tokens between window starts.")
flags.DEFINE_integer("max_query_length", 64, "SQuAD: question tokens kept.")
flags.DEFINE_integer("max_answer_length", 30, "SQuAD: longest answer in tokens.")
flags.DEFINE_integer("n_best_size", 20, "SQuAD: candidates kept per question.")
flags.DEFINE_bool(
    "swap_sentence_order",
    None,
    "MRPC/STS-B: add every training pair again with "
    "the sentences swapped (default: on for MRPC and STS-B, as the reference; "
    "--noswap_sentence_order turns it off).",
)
flags.DEFINE_integer(
    "tag_column",
    -1,
    "ner/chunk: 0-based column of the tag in the CoNLL files (-1: the last column; column 0 is the token).",
)
flags.DEFINE_enum(
    "tagging_scheme",
    "file",
    ["file", "bioes"],
    "ner/chunk: train on the files' "
    "own tags (file) or on their BIOES re-encoding (bioes, the reference's); "
    "bioes predictions are written back as IOB2.",
)
flags.DEFINE_integer(
    "tagging_segment_id",
    0,
    "ner/chunk: the token type (segment id) of every "
    "token: 0 as single-text GLUE inputs, 1 as the reference's tagging tasks.",
)
flags.DEFINE_enum(
    "tagging_span_rule",
    "conlleval",
    ["conlleval", "reference"],
    "ner/chunk: how "
    "dev tags become spans. conlleval: an I- after another type's tag starts a new "
    "span; reference: it extends the open span, which takes the new type (the "
    "reference's get_span_labels).",
)
flags.DEFINE_enum(
    "tagging_truncation",
    "score_all",
    ["score_all", "reference"],
    "ner/chunk: long "
    "sentences. score_all: keep max_seq_length-2 WordPieces and score every word "
    "(cut ones as O); reference: stop adding words once words + pieces + 1 exceed "
    "max_seq_length and score only the kept words.",
)
flags.DEFINE_enum(
    "tag_set_from",
    "train",
    ["train", "all_splits"],
    "ner/chunk: the model's tag "
    "set from the training file's tags (train) or from train, dev and test "
    "(all_splits, the reference's).",
)
flags.DEFINE_integer("max_train_examples", None, "Use a fixed random subset of the training set.")
flags.DEFINE_integer("max_eval_examples", None, "Evaluate on the first N dev examples only.")
flags.DEFINE_integer(
    "squad_holdout_articles",
    0,
    "SQuAD without a train file: train on the dev file minus its last N articles and evaluate on those N.",
)
flags.DEFINE_enum(
    "squad_head",
    "joint",
    ["joint", "independent"],
    "SQuAD span head. joint: the "
    "reference's (end logits conditioned on the start, a beam of --n_best_size "
    "starts; 2.0 answerability from [CLS] and the start-weighted hidden states, "
    "loss weight 0.5); independent: separate start/end logits, answerability on "
    "[CLS] with weight 1.",
)
flags.DEFINE_bool(
    "squad_v1_answerable_head",
    False,
    "SQuAD 1.1: also build and train the "
    "answerability classifier (every label answerable, its loss weighted as 2.0's), "
    "as the reference does; 1.1 decoding never reads it.",
)
flags.DEFINE_float(
    "squad_null_threshold",
    None,
    'SQuAD 2.0: answer "" when the no-answer score '
    "exceeds this (the reference: -2.75); default: the threshold with the best dev "
    "F1, as the official script's best_f1.",
)
# --strategy, --tpu, --num_cpu_devices, --mixed_precision, --jit_compile:
cli.define_runtime_flags()
flags.DEFINE_bool("trim_padding", True, "Cut each batch to its longest sequence (same results, faster on short texts).")
flags.DEFINE_integer("log_every_steps", 50, "Print progress this often.")
flags.DEFINE_bool("save_weights", True, "Write each trial's fine-tuned weights.")
flags.DEFINE_bool("write_test_predictions", True, "Predict the test split when its file exists.")
# --task=custom: your own CSV/TSV files.
flags.DEFINE_string(
    "task_name", "custom", "--task=custom: the task's name (its folder under --output_dir and in head.json)."
)
flags.DEFINE_enum(
    "task_type",
    "classification",
    ["classification", "regression"],
    "--task=custom: classification (accuracy, +F1 for 2 labels) or regression (Pearson/Spearman).",
)
flags.DEFINE_string(
    "train_file",
    None,
    "--task=custom: training file, .tsv or .csv with a header row (default: train.tsv/.csv in --data_dir).",
)
flags.DEFINE_string("dev_file", None, "--task=custom: dev file (default: dev.tsv/.csv in --data_dir).")
flags.DEFINE_string(
    "test_file",
    None,
    "--task=custom: optional unlabelled test file (default: "
    "test.tsv/.csv in --data_dir); predictions go to test_predictions.tsv.",
)
flags.DEFINE_string("text_column", "text", "--task=custom: header name of the text column.")
flags.DEFINE_string("text_b_column", None, "--task=custom: header name of the second text (sentence-pair tasks).")
flags.DEFINE_string("label_column", "label", "--task=custom: header name of the label / target.")
flags.DEFINE_string(
    "labels", None, "--task=custom: the labels, comma-separated, in class order (default: the training file's, sorted)."
)
flags.DEFINE_string(
    "delimiter",
    None,
    "--task=custom: tab, comma, semicolon, pipe or one character (default: from the extension, .tsv tab, .csv comma).",
)
flags.DEFINE_string(
    "id_column", None, "--task=custom: test column written as the predictions' index (default: the row number from 0)."
)
# Long runs.
flags.DEFINE_integer(
    "save_checkpoints_steps",
    1000,
    "Checkpoint each trial this often (and at its end); rerunning the same command resumes from the newest.",
)
flags.DEFINE_bool(
    "keep_checkpoints", False, "Keep a finished trial's checkpoints (by default deleted once finetuned/ is written)."
)
flags.DEFINE_integer(
    "eval_every_steps", 0, "Score dev (TensorBoard <trial>/logs/dev) this often; 0: at the end of every epoch."
)
flags.DEFINE_bool(
    "do_train",
    True,
    "--nodo_train: score the fine-tuned model in --finetuned_dir on dev and predict test, without training.",
)
flags.DEFINE_string(
    "finetuned_dir",
    None,
    "--nodo_train: a trial's finetuned/ folder, a trial or "
    "a task folder (default: --output_dir's own, its median trial).",
)


def main(argv: list[str]) -> None:
    """Fine-tunes and evaluates: flags -> finetuning.FinetuningOptions -> finetuning.run_finetuning."""
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {' '.join(argv[1:])!r}; every option is a --flag")
    # TensorFlow-heavy: imported after the flags are parsed, so --help and flag errors stay fast.
    from electra_tf import distribution, finetuning

    distribution.split_cpu_devices(FLAGS.num_cpu_devices)
    options = finetuning.FinetuningOptions(
        tasks=FLAGS.task,
        output_dir=FLAGS.output_dir,
        data_dir=FLAGS.data_dir,
        use_tfds=FLAGS.use_tfds,
        tfds_data_dir=FLAGS.tfds_data_dir,
        init_checkpoint=FLAGS.init_checkpoint,
        config=FLAGS.config,
        hparams=FLAGS.hparams,
        vocab_file=FLAGS.vocab_file,
        overwrite=FLAGS.overwrite,
        num_trials=FLAGS.num_trials,
        seed=FLAGS.seed,
        learning_rate=FLAGS.learning_rate,
        layerwise_decay=FLAGS.layerwise_lr_decay,
        layerwise_decay_formula=FLAGS.layerwise_decay_formula,
        num_train_epochs=FLAGS.num_train_epochs,
        num_train_steps=FLAGS.num_train_steps,
        warmup_proportion=FLAGS.warmup_proportion,
        weight_decay_rate=FLAGS.weight_decay_rate,
        train_batch_size=FLAGS.train_batch_size,
        eval_batch_size=FLAGS.eval_batch_size,
        max_seq_length=FLAGS.max_seq_length,
        doc_stride=FLAGS.doc_stride,
        max_query_length=FLAGS.max_query_length,
        max_answer_length=FLAGS.max_answer_length,
        n_best_size=FLAGS.n_best_size,
        swap_sentence_order=FLAGS.swap_sentence_order,
        max_train_examples=FLAGS.max_train_examples,
        max_eval_examples=FLAGS.max_eval_examples,
        squad_holdout_articles=FLAGS.squad_holdout_articles,
        squad_head=FLAGS.squad_head,
        squad_null_threshold=FLAGS.squad_null_threshold,
        squad_v1_answerable_head=FLAGS.squad_v1_answerable_head,
        tag_column=FLAGS.tag_column,
        tagging_scheme=FLAGS.tagging_scheme,
        tagging_segment_id=FLAGS.tagging_segment_id,
        tagging_span_rule=FLAGS.tagging_span_rule,
        tagging_truncation=FLAGS.tagging_truncation,
        tag_set_from=FLAGS.tag_set_from,
        strategy=FLAGS.strategy,
        tpu=FLAGS.tpu,
        mixed_precision=FLAGS.mixed_precision,
        jit_compile=FLAGS.jit_compile,
        trim_padding=FLAGS.trim_padding,
        log_every_steps=FLAGS.log_every_steps,
        save_weights=FLAGS.save_weights,
        write_test_predictions=FLAGS.write_test_predictions,
        task_name=FLAGS.task_name,
        task_type=FLAGS.task_type,
        train_file=FLAGS.train_file,
        dev_file=FLAGS.dev_file,
        test_file=FLAGS.test_file,
        text_column=FLAGS.text_column,
        text_b_column=FLAGS.text_b_column,
        label_column=FLAGS.label_column,
        labels=FLAGS.labels,
        delimiter=FLAGS.delimiter,
        id_column=FLAGS.id_column,
        save_checkpoints_steps=FLAGS.save_checkpoints_steps,
        keep_checkpoints=FLAGS.keep_checkpoints,
        eval_every_steps=FLAGS.eval_every_steps,
        do_train=FLAGS.do_train,
        finetuned_dir=FLAGS.finetuned_dir,
    )
    finetuning.run_finetuning(options)


if __name__ == "__main__":
    cli.run(main)
