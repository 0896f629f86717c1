"""Downloads the OpenWebText corpus (Gokaslan and Cohen, Zenodo record 3834942) and unpacks it
into files build_pretraining_data reads, one web page per document.

    python data/download_openwebtext.py --output_dir=openwebtext [--layout=jsonl|text]

openwebtext.tar.xz holds openwebtext/urlsf_subset*.xz, each an xz-compressed tar of .txt files,
one web page each. The size and MD5 the Zenodo record publishes are checked. Then, streaming
(nothing is unpacked to disk first), every subset becomes under <output_dir>/text/

  --layout=jsonl (default)  <subset>.jsonl, one {"text": page} per line (about 20,000 files),
                            read as JSON Lines by build_pretraining_data --corpus_dir=openwebtext/text
  --layout=text             <subset>/<page>.txt, one file per page (about 8 million files, as
                            ELECTRA's own builder unpacks them); build with
                            --blanks_separate_docs=false so each file is one document.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import tarfile

if __package__ in (None, ""):  # run as a file: make `data` and `electra_tf` importable
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from data import download  # noqa: E402
from electra_tf.errors import UserError  # noqa: E402

DEFAULT_BASE_URL = "https://zenodo.org"
RECORD = "3834942"
ARCHIVE = "openwebtext.tar.xz"
TEXT_FOLDER = "text"


def published_file_info(record: dict, name: str, source: str) -> tuple[int, dict]:
    """(size, {"md5": hex}) of one file of a Zenodo record's JSON (both API generations)."""
    files = record.get("files")
    if isinstance(files, dict):  # the newer API nests them under "entries"
        files = list((files.get("entries") or {}).values())
    for entry in files or []:
        if entry.get("key") == name or entry.get("filename") == name:
            algorithm, _, value = str(entry.get("checksum", "")).partition(":")
            checksums = {algorithm: value} if algorithm in download.HASH_NAMES and value else {}
            size = entry.get("size") or entry.get("filesize")
            return (int(size) if size else None), checksums
    raise UserError(f"{source}: the record lists no {name}; check --base_url")


def _subset_name(member_name: str) -> str:
    name = pathlib.PurePosixPath(member_name).name
    for suffix in (".tar.xz", ".xz"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def unpack(archive: pathlib.Path, target: pathlib.Path, layout: str, progress_interval=None) -> dict[str, int]:
    """Streams the outer and inner archives once, writing the pages under target."""
    counts = {"subsets": 0, "documents": 0, "empty": 0}
    target.mkdir(parents=True, exist_ok=True)
    with open(archive, "rb") as raw:
        progress = download.Progress(f"unpacking {archive.name}", archive.stat().st_size, interval=progress_interval)
        position = 0
        for member, subset_file in download.iter_tar_files(raw, str(archive), "r|xz"):
            if not member.name.endswith(".xz"):
                continue
            subset = _subset_name(member.name)
            counts["subsets"] += 1
            jsonl = None
            if layout == "jsonl":
                jsonl = open(target / f"{subset}.jsonl", "w", encoding="utf-8", newline="\n")
            try:
                for page, page_file in download.iter_tar_files(subset_file, f"{archive}:{member.name}", "r|xz"):
                    text = page_file.read().decode("utf-8", "replace")
                    if not text.strip():
                        counts["empty"] += 1
                        continue
                    counts["documents"] += 1
                    if jsonl is not None:
                        jsonl.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
                    else:
                        folder = target / subset
                        folder.mkdir(exist_ok=True)
                        name = pathlib.PurePosixPath(page.name).name
                        (folder / name).write_text(text, encoding="utf-8")
            finally:
                if jsonl is not None:
                    jsonl.close()
            now = raw.tell()
            progress.update(now - position)
            position = now
        progress.finish()
    if not counts["documents"]:
        raise UserError(
            f"{archive}: no pages found inside; it is not the OpenWebText archive "
            "(delete it and run again, or check --base_url)"
        )
    return counts


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    download.common_arguments(parser, DEFAULT_BASE_URL)
    parser.add_argument(
        "--layout",
        choices=("jsonl", "text"),
        default="jsonl",
        help="jsonl: one file per subset; text: one file per page.",
    )
    parser.add_argument("--no_extract", action="store_true", help="Only download and verify the archive.")
    args = parser.parse_args(argv)
    options = download.fetch_options(args)
    text_dir = args.output_dir / TEXT_FOLDER
    if not args.no_extract:
        download.refuse_existing(text_dir, args.overwrite)  # before a 12 GB download
    record_url = download.join_url(args.base_url, "api/records", RECORD)
    try:
        record = json.loads(download.fetch_text(record_url, attempts=args.attempts, timeout=args.timeout))
    except json.JSONDecodeError:
        raise UserError(f"{record_url}: not the JSON of a Zenodo record; check --base_url") from None
    size, checksums = published_file_info(record, ARCHIVE, record_url)
    archive = download.fetch(
        download.join_url(args.base_url, "records", RECORD, "files", ARCHIVE),
        download.download_dir(args) / ARCHIVE,
        size=size,
        checksums=checksums,
        reuse=True,
        overwrite=args.overwrite,
        **options,
    )
    download.log(f"{archive}: verified ({', '.join(checksums) or 'size only'})")
    if args.no_extract:
        return
    with download.staged(text_dir, args.overwrite) as staging:
        try:
            counts = unpack(archive, staging, args.layout)
        except (tarfile.TarError, EOFError, OSError) as error:
            raise UserError(f"{archive}: cannot be unpacked ({error}); delete it and run again") from None
    download.log(
        f"{counts['documents']:,} pages from {counts['subsets']:,} subsets in {text_dir}"
        f" ({counts['empty']:,} empty pages skipped)"
    )
    flag = " --blanks_separate_docs=false" if args.layout == "text" else ""
    download.log(
        f"Build pretraining data with python -m electra_tf.build_pretraining_data --corpus_dir={text_dir}{flag} ..."
    )


if __name__ == "__main__":
    download.run_main(main)
