"""Downloads SQuAD 1.1 and 2.0 from the SQuAD explorer site, checked against their MD5 sums.

    python data/download_squad.py --output_dir=squad [--versions=1.1,2.0]

writes <output_dir>/v1.1/{train,dev}-v1.1.json and <output_dir>/v2.0/{train,dev}-v2.0.json, then

    python -m electra_tf.run_finetuning --task=squad-v1.1 --data_dir=squad ...

(run_finetuning looks in <data_dir>/v<version>/ for the official file names).
"""

from __future__ import annotations

import argparse
import pathlib
import sys

if __package__ in (None, ""):  # run as a file: make `data` and `electra_tf` importable
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from data import download  # noqa: E402
from electra_tf.errors import UserError  # noqa: E402

DEFAULT_BASE_URL = "https://rajpurkar.github.io/SQuAD-explorer/dataset"

# The MD5 sums the SQuAD files are widely checked against (torchtext's and NVIDIA's download
# scripts); dev-v1.1.json's was confirmed on a copy here.
FILES = {
    "1.1": {"train-v1.1.json": "981b29407e0affa3b1b156f72073b945", "dev-v1.1.json": "3e85deb501d4e538b6bc56f786231552"},
    "2.0": {"train-v2.0.json": "62108c273c268d70893182d5cf8df740", "dev-v2.0.json": "246adae8b7002f8679c027697b0b7cf8"},
}


def parse_versions(text: str) -> list[str]:
    versions = []
    for part in (part.strip().lower().lstrip("v") for part in text.split(",")):
        if not part:
            continue
        part = {"1": "1.1", "2": "2.0"}.get(part, part)
        if part not in FILES:
            raise UserError(f"--versions: unknown SQuAD version {part!r}; use 1.1, 2.0 or both")
        if part not in versions:
            versions.append(part)
    if not versions:
        raise UserError("--versions is empty; use 1.1, 2.0 or 1.1,2.0")
    return versions


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    download.common_arguments(parser, DEFAULT_BASE_URL, archives=False)
    parser.add_argument("--versions", default="1.1,2.0", help="1.1, 2.0 or both.")
    args = parser.parse_args(argv)
    options = download.fetch_options(args)
    targets = [
        (args.output_dir / f"v{version}" / name, md5)
        for version in parse_versions(args.versions)
        for name, md5 in FILES[version].items()
    ]
    for path, _ in targets:  # refuse before downloading anything
        download.refuse_existing(path, args.overwrite)
    for path, md5 in targets:
        download.fetch(
            download.join_url(args.base_url, path.name),
            path,
            checksums={"md5": md5},
            overwrite=args.overwrite,
            **options,
        )
        download.log(f"{path}: verified")
    download.log(
        f"SQuAD in {args.output_dir}: fine-tune with python -m electra_tf.run_finetuning "
        f"--task=squad-v1.1 --data_dir={args.output_dir}"
    )


if __name__ == "__main__":
    download.run_main(main)
