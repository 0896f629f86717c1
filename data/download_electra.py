"""Downloads Google's released ELECTRA checkpoints and converts them with
electra_tf.convert_checkpoint.

    python data/download_electra.py --output_dir=checkpoints [--models=small,base,large]

For each model, <output_dir>/electra_<size>/ is the unpacked release (the TF1 checkpoint and
vocab.txt) and <output_dir>/electra_<size>_tf/ the converted model (config.json, *.weights.h5,
vocab.txt) that fine-tuning and continued pretraining start from:

    python -m electra_tf.run_finetuning --init_checkpoint=checkpoints/electra_small_tf ...

The zips come from Google Cloud Storage, which publishes each object's MD5 (the x-goog-hash
header); it is checked.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import subprocess
import sys

if __package__ in (None, ""):  # run as a file: make `data` and `electra_tf` importable
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from data import download  # noqa: E402
from electra_tf.errors import UserError  # noqa: E402

DEFAULT_BASE_URL = "https://storage.googleapis.com/electra-data"
REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
# size -> (preset, --hparams the release needs). The released Small's generator is as wide as its
# discriminator (reference issue #39), not the paper's quarter width.
MODELS = {
    "small": ("electra_small", '{"generator_hidden_size": 1.0}'),
    "base": ("electra_base", None),
    "large": ("electra_large", None),
}


def parse_models(text: str) -> list[str]:
    if text.strip().lower() == "all":
        return list(MODELS)
    models = []
    for part in (part.strip().lower() for part in text.split(",")):
        if not part:
            continue
        part = part.removeprefix("electra_").removeprefix("electra-")
        if part not in MODELS:
            raise UserError(f"--models: unknown model {part!r}; use small, base, large (comma-separated) or all")
        if part not in models:
            models.append(part)
    if not models:
        raise UserError("--models is empty; use small, base, large or all")
    return models


def _checkpoint_folder(unpacked: pathlib.Path, archive: pathlib.Path) -> pathlib.Path:
    """The folder of the unpacked zip that holds the checkpoint (*.index)."""
    folders = sorted({path.parent for path in unpacked.rglob("*.index")}, key=lambda path: len(path.parts))
    if not folders:
        raise UserError(
            f"{archive}: holds no TensorFlow checkpoint (*.index); delete it and run again, or check --base_url"
        )
    return folders[0]


def unpack_release(archive: pathlib.Path, final: pathlib.Path, overwrite: bool) -> None:
    with download.staged(final, overwrite) as staging:
        unpacked = staging.with_name(staging.name + ".unzip")
        try:
            download.extract_zip(archive, unpacked)
            os.replace(_checkpoint_folder(unpacked, archive), staging)
        finally:
            if unpacked.exists():
                shutil.rmtree(unpacked)
    if not (final / "vocab.txt").is_file():
        download.log(f"{final}: no vocab.txt in the release; pass --vocab_file to run_finetuning")


def convert(release: pathlib.Path, final: pathlib.Path, config: str, hparams: str | None, overwrite: bool) -> None:
    """Runs python -m electra_tf.convert_checkpoint into a staging folder, renamed when done."""
    with download.staged(final, overwrite) as staging:
        command = [
            sys.executable,
            "-m",
            "electra_tf.convert_checkpoint",
            "--from=official",
            f"--checkpoint={release}",
            f"--config={config}",
            f"--output_dir={staging}",
        ]
        if hparams:
            command.append(f"--hparams={hparams}")
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(
            [str(REPO_ROOT)] + ([environment["PYTHONPATH"]] if environment.get("PYTHONPATH") else [])
        )
        download.log("running " + " ".join(command))
        result = subprocess.run(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if result.returncode != 0:
            lines = [line for line in result.stderr.splitlines() if line.strip()]
            reason = lines[-1] if lines else f"exit status {result.returncode}"
            raise UserError(f"converting {release} failed: {reason}")
        sys.stderr.write(result.stdout)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    download.common_arguments(parser, DEFAULT_BASE_URL)
    parser.add_argument("--models", default="small", help="small, base, large (comma-separated) or all.")
    parser.add_argument("--no_convert", action="store_true", help="Only download and unpack the released checkpoints.")
    parser.add_argument(
        "--config",
        default=None,
        help="Config preset or JSON file for the conversion, for every model (default: the model's preset).",
    )
    parser.add_argument(
        "--hparams",
        default=None,
        help="JSON overrides for the conversion (default: what the release needs, e.g. Small's full-width generator).",
    )
    args = parser.parse_args(argv)
    options = download.fetch_options(args)
    models = parse_models(args.models)
    for size in models:  # refuse before downloading anything
        download.refuse_existing(args.output_dir / f"electra_{size}", args.overwrite)
        if not args.no_convert:
            download.refuse_existing(args.output_dir / f"electra_{size}_tf", args.overwrite)
    for size in models:
        preset, release_hparams = MODELS[size]
        name = f"electra_{size}.zip"
        archive = download.fetch(
            download.join_url(args.base_url, name),
            download.download_dir(args) / name,
            reuse=True,
            overwrite=args.overwrite,
            **options,
        )
        release = args.output_dir / f"electra_{size}"
        unpack_release(archive, release, args.overwrite)
        download.log(f"{release}: released checkpoint unpacked")
        if args.no_convert:
            continue
        config = args.config or preset
        hparams = args.hparams if args.hparams is not None else (release_hparams if args.config is None else None)
        converted = args.output_dir / f"electra_{size}_tf"
        convert(release, converted, config, hparams, args.overwrite)
        download.log(
            f"{converted}: converted; fine-tune with python -m electra_tf.run_finetuning "
            f"--init_checkpoint={converted} ..."
        )


if __name__ == "__main__":
    download.run_main(main)
