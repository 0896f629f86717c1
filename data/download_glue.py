"""Downloads the GLUE tasks and lays them out as run_finetuning reads them.

    python data/download_glue.py --output_dir=glue [--tasks=all|cola,sst-2,...,diagnostic]

writes <output_dir>/CoLA, SST-2, MRPC, STS-B, QQP, MNLI, QNLI, RTE, WNLI (each with the
train/dev/test TSVs of the original GLUE release) and diagnostic/diagnostic.tsv, then

    python -m electra_tf.run_finetuning --task=rte --data_dir=glue ...

The archives are GLUE's own (dl.fbaipublicfiles.com/glue/data). MRPC is not redistributed by
GLUE: as in GLUE's download script, its train/dev/test TSVs are built from the SentEval copy of the
Microsoft Research Paraphrase Corpus and GLUE's list of dev-set pairs.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import sys

if __package__ in (None, ""):  # run as a file: make `data` and `electra_tf` importable
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from data import download  # noqa: E402
from electra_tf import finetuning_tasks  # noqa: E402
from electra_tf.errors import UserError  # noqa: E402

DEFAULT_BASE_URL = "https://dl.fbaipublicfiles.com"

# GLUE task folder -> archive under <base>/glue/data/. The archives publish no checksums; their
# size is checked against Content-Length and their contents against the files the reader needs.
ARCHIVES = {
    "CoLA": "CoLA.zip",
    "SST-2": "SST-2.zip",
    "STS-B": "STS-B.zip",
    "QQP": "QQP-clean.zip",
    "MNLI": "MNLI.zip",
    "QNLI": "QNLIv2.zip",
    "RTE": "RTE.zip",
    "WNLI": "WNLI.zip",
}
DIAGNOSTIC = "glue/data/AX.tsv"
MRPC_FILES = {
    # file in MRPC/: (path under the base URL, md5 or None)
    "msr_paraphrase_train.txt": ("senteval/senteval_data/msr_paraphrase_train.txt", "793daf7b6224281e75fe61c1f80afe35"),
    "msr_paraphrase_test.txt": ("senteval/senteval_data/msr_paraphrase_test.txt", "e437fdddb92535b820fe8852e2df8a49"),
    "dev_ids.tsv": ("glue/data/mrpc_dev_ids.tsv", "7ab59a1b04bd7cb773f98a0717106c9b"),
}
ALL_TASKS = ("CoLA", "SST-2", "MRPC", "STS-B", "QQP", "MNLI", "QNLI", "RTE", "WNLI", "diagnostic")
MRPC_TEST_HEADER = "index\t#1 ID\t#2 ID\t#1 String\t#2 String\n"


def parse_tasks(text: str) -> list[str]:
    if text.strip().lower() == "all":
        return list(ALL_TASKS)
    chosen = []
    for name in (part.strip() for part in text.split(",")):
        if not name:
            continue
        if name.lower() in ("diagnostic", "ax"):
            directory = "diagnostic"
        else:
            try:
                task = finetuning_tasks.get_task(name)
            except UserError:
                task = None
            if task is None or task.is_squad:
                raise UserError(
                    f"--tasks: unknown GLUE task {name!r}; use 'all' or some of "
                    f"{', '.join(ALL_TASKS)} (SQuAD: data/download_squad.py)"
                )
            directory = task.directory
        if directory not in chosen:
            chosen.append(directory)
    if not chosen:
        raise UserError("--tasks is empty; use 'all' or a comma-separated list such as cola,rte")
    return chosen


def expected_files(directory: str) -> list[str]:
    """The TSVs run_finetuning reads for a task folder."""
    task = next(task for task in finetuning_tasks.GLUE_TASKS.values() if task.directory == directory)
    return [f"{split}.tsv" for split in ("train",) + task.dev_splits + task.test_splits]


def _task_root(extracted: pathlib.Path, archive: pathlib.Path, directory: str) -> pathlib.Path:
    """The folder of an unpacked archive that holds train.tsv (QNLIv2.zip unpacks to QNLI/)."""
    candidates = sorted((path.parent for path in extracted.rglob("train.tsv")), key=lambda path: len(path.parts))
    if not candidates:
        raise UserError(
            f"{archive}: holds no train.tsv; it is not GLUE's {directory} archive "
            "(delete it and run again, or check --base_url)"
        )
    root = candidates[0]
    missing = [name for name in expected_files(directory) if not (root / name).is_file()]
    if missing:
        raise UserError(
            f"{archive}: lacks {', '.join(missing)} that run_finetuning reads for "
            f"{directory}; delete it and run again, or check --base_url"
        )
    return root


def install_archive_task(directory: str, args, options: dict) -> pathlib.Path:
    name = ARCHIVES[directory]
    final = args.output_dir / directory
    download.refuse_existing(final, args.overwrite)
    archive = download.fetch(
        download.join_url(args.base_url, "glue/data", name),
        download.download_dir(args) / name,
        reuse=True,
        overwrite=args.overwrite,
        **options,
    )
    with download.staged(final, args.overwrite) as staging:
        unpacked = staging.with_name(staging.name + ".unzip")
        try:
            download.extract_zip(archive, unpacked)
            os.replace(_task_root(unpacked, archive, directory), staging)
        finally:
            if unpacked.exists():
                shutil.rmtree(unpacked)
    return final


def _mrpc_rows(path: pathlib.Path) -> tuple[str, list[list[str]]]:
    """(header line, rows of 5 fields) of a msr_paraphrase_*.txt file."""
    with open(path, encoding="utf-8") as handle:
        header = handle.readline()
        rows = []
        for number, line in enumerate(handle, start=2):
            if not line.strip():
                continue
            fields = line.strip().split("\t")
            if len(fields) != 5:
                raise UserError(
                    f"{path}:{number}: expected 5 tab-separated fields (Quality, "
                    f"#1 ID, #2 ID, #1 String, #2 String), found {len(fields)}; "
                    "delete the file and run again"
                )
            rows.append(fields)
    if not header.rstrip("\n").lstrip("\ufeff").startswith("Quality"):
        raise UserError(
            f"{path}: does not start with MRPC's 'Quality' header; delete it and run again, or check --base_url"
        )
    return header, rows


def write_mrpc(
    train_txt: pathlib.Path, test_txt: pathlib.Path, dev_ids: pathlib.Path, target: pathlib.Path
) -> dict[str, int]:
    """GLUE's MRPC TSVs: the pairs listed in dev_ids go to dev.tsv, the rest of the training
    file to train.tsv (both keep its header); test.tsv numbers the test pairs from 0."""
    with open(dev_ids, encoding="utf-8") as handle:
        dev_pairs = {tuple(line.strip().split("\t")) for line in handle if line.strip()}
    header, rows = _mrpc_rows(train_txt)
    target.mkdir(parents=True, exist_ok=True)
    counts = {"train": 0, "dev": 0, "test": 0}
    with (
        open(target / "train.tsv", "w", encoding="utf-8", newline="\n") as train,
        open(target / "dev.tsv", "w", encoding="utf-8", newline="\n") as dev,
    ):
        train.write(header)
        dev.write(header)
        for fields in rows:
            split = "dev" if (fields[1], fields[2]) in dev_pairs else "train"
            (dev if split == "dev" else train).write("\t".join(fields) + "\n")
            counts[split] += 1
    _, test_rows = _mrpc_rows(test_txt)
    with open(target / "test.tsv", "w", encoding="utf-8", newline="\n") as test:
        test.write(MRPC_TEST_HEADER)
        for index, fields in enumerate(test_rows):
            test.write("\t".join([str(index)] + fields[1:]) + "\n")
            counts["test"] += 1
    if counts["dev"] != len(dev_pairs):
        raise UserError(
            f"{dev_ids}: lists {len(dev_pairs)} dev pairs but {train_txt} holds "
            f"{counts['dev']} of them; the files are from different releases"
        )
    return counts


def install_mrpc(args, options: dict) -> pathlib.Path:
    final = args.output_dir / "MRPC"
    download.refuse_existing(final, args.overwrite)
    sources = {}
    for name, (path, md5) in MRPC_FILES.items():
        sources[name] = download.fetch(
            download.join_url(args.base_url, path),
            download.download_dir(args) / "MRPC" / name,
            reuse=True,
            overwrite=args.overwrite,
            checksums={"md5": md5} if md5 else None,
            **options,
        )
    with download.staged(final, args.overwrite) as staging:
        counts = write_mrpc(
            sources["msr_paraphrase_train.txt"], sources["msr_paraphrase_test.txt"], sources["dev_ids.tsv"], staging
        )
        for name, path in sources.items():
            shutil.copyfile(path, staging / name)
    download.log(f"MRPC: {counts['train']:,} train, {counts['dev']:,} dev, {counts['test']:,} test pairs")
    return final


def install_diagnostic(args, options: dict) -> pathlib.Path:
    final = args.output_dir / "diagnostic"
    download.refuse_existing(final, args.overwrite)
    source = download.fetch(
        download.join_url(args.base_url, DIAGNOSTIC),
        download.download_dir(args) / "AX.tsv",
        reuse=True,
        overwrite=args.overwrite,
        **options,
    )
    with download.staged(final, args.overwrite) as staging:
        staging.mkdir()
        shutil.copyfile(source, staging / "diagnostic.tsv")
    return final


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    download.common_arguments(parser, DEFAULT_BASE_URL)
    parser.add_argument(
        "--tasks",
        default="all",
        help="'all' or comma-separated tasks: cola, sst-2, mrpc, sts-b, qqp, mnli, qnli, rte, wnli, diagnostic.",
    )
    args = parser.parse_args(argv)
    options = download.fetch_options(args)
    tasks = parse_tasks(args.tasks)
    # Refuse before downloading anything, not after hours of it.
    for directory in tasks:
        download.refuse_existing(args.output_dir / directory, args.overwrite)
    for directory in tasks:
        if directory == "MRPC":
            final = install_mrpc(args, options)
        elif directory == "diagnostic":
            final = install_diagnostic(args, options)
        else:
            final = install_archive_task(directory, args, options)
        download.log(f"{directory}: ready in {final}")
    download.log(
        f"GLUE tasks in {args.output_dir}: fine-tune with python -m "
        f"electra_tf.run_finetuning --data_dir={args.output_dir} --task=..."
    )


if __name__ == "__main__":
    download.run_main(main)
