"""Downloads a Wikipedia dump from dumps.wikimedia.org, checks its published SHA-1 and extracts it.

    python data/download_wikipedia.py --output_dir=wikipedia [--lang=en] [--dump_date=20240601] \\
        [--processes=8]

keeps the dump in <output_dir>/downloads/ and writes the articles, one paragraph per line in
WikiExtractor's <doc> layout, to <output_dir>/text/AA/wiki_00 ... (see data/extract_wikipedia.py),
ready for

    python -m electra_tf.build_pretraining_data --corpus_dir=wikipedia/text --vocab_file=vocab.txt

A dated dump (a folder name under dumps.wikimedia.org/enwiki/) gives reproducible data; `latest`
is whatever finished most recently.
"""

from __future__ import annotations

import argparse
import pathlib
import re
import sys

if __package__ in (None, ""):  # run as a file: make `data` and `electra_tf` importable
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from data import download, extract_wikipedia  # noqa: E402
from electra_tf.errors import UserError  # noqa: E402

DEFAULT_BASE_URL = "https://dumps.wikimedia.org"
TEXT_FOLDER = "text"


def dump_names(lang: str, date: str) -> tuple[str, str, str]:
    """(folder under the base URL, dump file name, checksum list name)."""
    wiki = f"{lang.replace('-', '_')}wiki"
    return f"{wiki}/{date}", f"{wiki}-{date}-pages-articles.xml.bz2", f"{wiki}-{date}-sha1sums.txt"


def published_sha1(listing: str, file_name: str, lang: str, source: str) -> str:
    """The SHA-1 of file_name in a dump's sha1sums.txt ("<sha1>  <file>" per line).

    The `latest` folder's list names the dated file it links to, so a dated name is accepted
    for a `latest` request.
    """
    wiki = re.escape(f"{lang.replace('-', '_')}wiki")
    dated = re.compile(rf"{wiki}-\d{{8}}-pages-articles\.xml\.bz2")
    for line in listing.splitlines():
        parts = line.split()
        if len(parts) != 2 or not re.fullmatch(r"[0-9a-fA-F]{40}", parts[0]):
            continue
        if parts[1] == file_name or ("-latest-" in file_name and dated.fullmatch(parts[1])):
            return parts[0].lower()
    raise UserError(
        f"{source}: lists no SHA-1 for {file_name}; check --lang and --dump_date "
        "(a dump still in progress has no list yet)"
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    download.common_arguments(parser, DEFAULT_BASE_URL)
    parser.add_argument("--lang", default="en", help="Wikipedia language code (en, de, ...).")
    parser.add_argument("--dump_date", default="latest", help="Dump folder: YYYYMMDD or 'latest'.")
    parser.add_argument("--no_extract", action="store_true", help="Only download and verify the dump.")
    extract_wikipedia.add_extraction_arguments(parser, lang=False)
    args = parser.parse_args(argv)
    options = download.fetch_options(args)
    if not re.fullmatch(r"[a-z][a-z\-]*", args.lang):
        raise UserError(f"--lang={args.lang!r}: expected a Wikipedia language code such as en")
    if not (args.dump_date == "latest" or re.fullmatch(r"\d{8}", args.dump_date)):
        raise UserError(f"--dump_date={args.dump_date!r}: expected YYYYMMDD or latest")
    text_dir = args.output_dir / TEXT_FOLDER
    if not args.no_extract:
        download.refuse_existing(text_dir, args.overwrite)  # before a multi-hour download
    folder, file_name, sums_name = dump_names(args.lang, args.dump_date)
    sums_url = download.join_url(args.base_url, folder, sums_name)
    sha1 = published_sha1(
        download.fetch_text(sums_url, attempts=args.attempts, timeout=args.timeout), file_name, args.lang, sums_url
    )
    dump = download.fetch(
        download.join_url(args.base_url, folder, file_name),
        download.download_dir(args) / file_name,
        checksums={"sha1": sha1},
        reuse=True,
        overwrite=args.overwrite,
        **options,
    )
    download.log(f"{dump}: SHA-1 verified")
    if args.no_extract:
        return
    extract_wikipedia.extract(
        dump,
        text_dir,
        overwrite=args.overwrite,
        lang=args.lang,
        processes=args.processes,
        file_bytes=args.file_bytes,
        max_articles=args.max_articles,
    )
    download.log(f"Build pretraining data with python -m electra_tf.build_pretraining_data --corpus_dir={text_dir} ...")


if __name__ == "__main__":
    download.run_main(main)
