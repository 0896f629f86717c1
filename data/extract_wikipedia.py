"""Turns a Wikipedia XML dump (pages-articles*.xml.bz2) into WikiExtractor-style text files.

    python data/extract_wikipedia.py --dump=enwiki-20240601-pages-articles.xml.bz2 \\
        --output_dir=wiki_text [--processes=8]

writes <output_dir>/AA/wiki_00, wiki_01, ... (about --file_bytes each, 100 files a folder, then AB/
and so on), every article as

    <doc id="12" url="https://en.wikipedia.org/wiki?curid=12" title="Anarchism">
    Anarchism

    first paragraph
    ...
    </doc>

one paragraph per line, section titles kept as lines ending in '.', which is what
build_pretraining_data reads (`--input_format=auto` detects it and drops each title line):

    python -m electra_tf.build_pretraining_data --corpus_dir=wiki_text --vocab_file=vocab.txt ...

Only articles are kept (namespace 0, no redirects). The markup is removed with a small set of
rules of our own (templates, tables, references, files and categories go; links become their text;
lists are dropped, as WikiExtractor does by default). The result is close to WikiExtractor's but
not byte-identical to it.
"""

from __future__ import annotations

import argparse
import bz2
import html
import multiprocessing
import pathlib
import re
import sys
import xml.etree.ElementTree as ElementTree
from typing import Iterator, Optional

if __package__ in (None, ""):  # run as a file: make `data` and `electra_tf` importable
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from data import download  # noqa: E402
from electra_tf.errors import UserError  # noqa: E402

FILES_PER_FOLDER = 100
# Namespaces whose links are not text of the article (files, categories, interwiki links).
_DROPPED_LINK_PREFIXES = {
    "file",
    "image",
    "category",
    "media",
    "wikipedia",
    "wp",
    "template",
    "help",
    "portal",
    "special",
    "draft",
    "module",
    "wikt",
    "wiktionary",
    "s",
    "commons",
    "meta",
    "q",
    "n",
    "b",
    "v",
    "voy",
    "species",
    "d",
}
_LANGUAGE_PREFIX = re.compile(r"^[a-z]{2,3}(-[a-z]+)?$")
_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.S)
_REF_SELF_CLOSED = re.compile(r"<ref\b[^>]*/>", re.I)
_REF = re.compile(r"<ref\b[^>]*>.*?(?:</ref\s*>|\Z)", re.I | re.S)
_DROPPED_ELEMENTS = re.compile(
    r"<(gallery|timeline|math|chem|score|syntaxhighlight|source|imagemap|graph|mapframe|"
    r"templatedata|hiero|table|ce|references|noinclude|inputbox|categorytree)\b[^>]*?"
    r"(?:/>|>.*?(?:</\1\s*>|\Z))",
    re.I | re.S,
)
_TEMPLATE = re.compile(r"\{\{(?:[^{}]|\{(?!\{)|\}(?!\}))*\}\}", re.S)
_TABLE = re.compile(r"\{\|(?:(?!\{\|).)*?\|\}", re.S)
_INTERNAL_LINK = re.compile(r"\[\[([^\[\]]*)\]\]")
_EXTERNAL_LINK = re.compile(r"\[(?:https?:|ftp:|//)[^\s\]]*(?:\s+([^\]]*))?\]")
_BARE_URL = re.compile(r"\bhttps?://\S+")
_EMPHASIS = re.compile(r"'{2,}")
_TAG = re.compile(r"</?[A-Za-z][^<>]*>")
_HEADING = re.compile(r"^(={1,6})\s*(.*?)\s*\1\s*$")
_EMPTY_BRACKETS = re.compile(r"\(\s*[,;:]?\s*\)")
_SPACE_BEFORE_PUNCTUATION = re.compile(r"\s+([,.;:!?])")
_SPACES = re.compile(r"[ \t\u00a0]+")
_MAGIC_WORD = re.compile(r"__[A-Z]+__")
_REDIRECT = re.compile(r"^\s*#redirect", re.I)
# Bounds for the innermost-first passes over nested templates, tables and links: real pages
# nest a few levels; a page that needs more keeps the rest, which the cleanup below drops.
_MAX_NESTING_PASSES = 20


def _repeat(pattern: re.Pattern, replacement, text: str) -> str:
    for _ in range(_MAX_NESTING_PASSES):
        text, count = pattern.subn(replacement, text)
        if not count:
            break
    return text


def _link_text(match: re.Match) -> str:
    inner = match.group(1)
    target, _, label = inner.partition("|")
    target = target.strip()
    if target.startswith(":"):
        target = target[1:]
    prefix, colon, _ = target.partition(":")
    if colon:
        key = prefix.strip().lower()
        if key in _DROPPED_LINK_PREFIXES or (_LANGUAGE_PREFIX.match(key) and not label):
            return ""
    if label:
        # [[File:..|thumb|caption]] was handled above; a plain link shows its last label.
        return label.rsplit("|", 1)[-1].strip()
    return target.split("#", 1)[0] if not target.startswith("#") else target[1:]


def clean_wikitext(text: str) -> list[str]:
    """An article's paragraphs (and section titles) as plain text, one string each."""
    text = _COMMENT.sub("", text)
    text = _REF_SELF_CLOSED.sub("", text)
    text = _REF.sub("", text)
    text = _DROPPED_ELEMENTS.sub("", text)
    text = _repeat(_TEMPLATE, "", text)
    text = _repeat(_TABLE, "", text)
    text = _repeat(_INTERNAL_LINK, _link_text, text)
    text = _EXTERNAL_LINK.sub(lambda match: match.group(1) or "", text)
    text = _EMPHASIS.sub("", text)
    text = re.sub(r"<br\s*/?>", " ", text, flags=re.I)
    text = _TAG.sub("", text)
    text = html.unescape(text)
    text = _MAGIC_WORD.sub("", text)
    lines: list[str] = []
    pending_heading: Optional[str] = None
    for raw in text.split("\n"):
        line = raw.strip()
        heading = _HEADING.match(line)
        if heading:
            title = _SPACES.sub(" ", heading.group(2)).strip()
            if title:
                pending_heading = title if title[-1] in ".?!" else title + "."
            continue
        # Lists, indented quotes, definition lists and table or template leftovers.
        if not line or line[0] in "*#:;|!{}=" or line.startswith(("[[", "]]")):
            continue
        line = line.replace("{{", "").replace("}}", "").replace("[[", "").replace("]]", "")
        line = _BARE_URL.sub("", line)
        line = _EMPTY_BRACKETS.sub("", line)
        line = _SPACES.sub(" ", line)
        line = _SPACE_BEFORE_PUNCTUATION.sub(r"\1", line).strip()
        if not line or not any(char.isalnum() for char in line):
            continue
        if pending_heading:  # a section title only when text follows it
            lines.append(pending_heading)
            pending_heading = None
        lines.append(line)
    return lines


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def iter_pages(stream) -> Iterator[tuple[str, str, str, bool, str]]:
    """(page id, title, namespace, is_redirect, wikitext) for each <page> of a dump stream.

    Elements are cleared as soon as they are read, so memory does not grow with the dump.
    """
    root = None
    for event, element in ElementTree.iterparse(stream, events=("start", "end")):
        if root is None:
            root = element
            continue
        if event != "end" or _local(element.tag) != "page":
            continue
        page_id = title = text = None
        namespace = "0"
        redirect = False
        for child in element:
            name = _local(child.tag)
            if name == "id" and page_id is None:
                page_id = (child.text or "").strip()
            elif name == "title":
                title = child.text or ""
            elif name == "ns":
                namespace = (child.text or "0").strip()
            elif name == "redirect":
                redirect = True
            elif name == "revision":
                for field in child:
                    if _local(field.tag) == "text":
                        text = field.text or ""
        yield page_id or "", title or "", namespace, redirect, text or ""
        root.clear()


def format_article(page: tuple[str, str, str, bool, str], lang: str) -> Optional[str]:
    """The <doc> block of one article, or None for pages that are not article text."""
    page_id, title, namespace, redirect, text = page
    if namespace != "0" or redirect or _REDIRECT.match(text):
        return None
    paragraphs = clean_wikitext(text)
    if not paragraphs:
        return None
    url = f"https://{lang}.wikipedia.org/wiki?curid={page_id}"
    header = f'<doc id="{html.escape(page_id)}" url="{html.escape(url)}" title="{html.escape(title)}">'
    return "\n".join([header, title, ""] + paragraphs + ["</doc>"]) + "\n"


class _Formatter:
    """Picklable format_article bound to a language, for multiprocessing."""

    def __init__(self, lang: str):
        self.lang = lang

    def __call__(self, page):
        return format_article(page, self.lang)


def folder_name(index: int) -> str:
    """AA, AB, ..., AZ, BA, ...: WikiExtractor's folder names."""
    first, second = divmod(index, 26)
    if first >= 26:
        raise UserError("more than 67,600 output files; raise --file_bytes")
    return chr(ord("A") + first) + chr(ord("A") + second)


class _Writer:
    def __init__(self, root: pathlib.Path, file_bytes: int):
        self.root = root
        self.file_bytes = file_bytes
        self.files = 0
        self._handle = None
        self._size = 0

    def write(self, block: str) -> None:
        data = block.encode("utf-8")
        if self._handle is None or (self._size and self._size + len(data) > self.file_bytes):
            self._next_file()
        self._handle.write(data)
        self._size += len(data)

    def _next_file(self) -> None:
        self.close()
        folder = self.root / folder_name(self.files // FILES_PER_FOLDER)
        folder.mkdir(parents=True, exist_ok=True)
        self._handle = open(folder / f"wiki_{self.files % FILES_PER_FOLDER:02d}", "wb")
        self.files += 1
        self._size = 0

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def guess_language(dump: pathlib.Path) -> str:
    match = re.match(r"([a-z_\-]+?)wiki-", dump.name)
    return match.group(1).replace("_", "-") if match else "en"


def extract(
    dump: pathlib.Path,
    output_dir: pathlib.Path,
    *,
    overwrite: bool = False,
    lang: Optional[str] = None,
    processes: int = 1,
    file_bytes: int = 1 << 20,
    max_articles: Optional[int] = None,
    progress_interval: Optional[float] = None,
) -> dict[str, int]:
    """Writes the articles of `dump` (.xml.bz2 or .xml) under output_dir; returns counts."""
    dump = pathlib.Path(dump)
    output_dir = pathlib.Path(output_dir)
    if not dump.is_file():
        raise UserError(f"{dump}: no such dump file (--dump); download one with data/download_wikipedia.py")
    if processes < 1 or file_bytes < 1:
        raise UserError("--processes and --file_bytes must be at least 1")
    lang = lang or guess_language(dump)
    counts = {"pages": 0, "articles": 0, "skipped": 0, "files": 0}
    with download.staged(output_dir, overwrite) as staging, open(dump, "rb") as raw:
        stream = bz2.BZ2File(raw) if dump.suffix == ".bz2" else raw
        writer = _Writer(staging, file_bytes)
        progress = download.Progress(f"extracting {dump.name}", dump.stat().st_size, interval=progress_interval)
        # spawn, not fork: a forked child of a process that has started threads (TensorFlow,
        # a test server) can deadlock on a lock one of them held.
        pool = multiprocessing.get_context("spawn").Pool(processes) if processes > 1 else None
        try:
            pages = iter_pages(stream)
            formatter = _Formatter(lang)
            blocks = pool.imap(formatter, pages, chunksize=16) if pool else map(formatter, pages)
            position = 0
            for block in blocks:
                counts["pages"] += 1
                if block is None:
                    counts["skipped"] += 1
                else:
                    writer.write(block)
                    counts["articles"] += 1
                now = raw.tell()
                progress.update(now - position)
                position = now
                if max_articles is not None and counts["articles"] >= max_articles:
                    break
        except (ElementTree.ParseError, OSError, EOFError) as error:
            raise UserError(
                f"{dump}: not a readable Wikipedia XML dump ({error}); download "
                "it again with data/download_wikipedia.py"
            ) from None
        finally:
            writer.close()
            if pool is not None:
                pool.terminate()
                pool.join()
        progress.finish()
        counts["files"] = writer.files
        if not counts["articles"]:
            raise UserError(f"{dump}: holds no articles (namespace 0, not redirects); is it a pages-articles dump?")
    download.log(
        f"{dump.name}: {counts['articles']:,} articles of {counts['pages']:,} pages in "
        f"{counts['files']:,} files under {output_dir}"
    )
    return counts


def add_extraction_arguments(parser: argparse.ArgumentParser, lang: bool = True) -> None:
    parser.add_argument(
        "--processes", type=int, default=1, help="Processes cleaning articles (the output does not depend on it)."
    )
    parser.add_argument(
        "--file_bytes", type=int, default=1 << 20, help="Approximate size of each output file (WikiExtractor's -b)."
    )
    parser.add_argument(
        "--max_articles", type=int, default=None, help="Stop after this many articles (for a quick sample)."
    )
    if lang:
        parser.add_argument(
            "--lang", default=None, help="Language code for the article URLs (default: from the dump's name)."
        )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dump", required=True, type=pathlib.Path, help="A pages-articles .xml.bz2 (or .xml) dump.")
    parser.add_argument(
        "--output_dir",
        required=True,
        type=pathlib.Path,
        help="Where the AA/wiki_00 ... files go (must not exist unless --overwrite).",
    )
    parser.add_argument("--overwrite", action="store_true", help="Replace --output_dir if it exists.")
    add_extraction_arguments(parser)
    args = parser.parse_args(argv)
    extract(
        args.dump,
        args.output_dir,
        overwrite=args.overwrite,
        lang=args.lang,
        processes=args.processes,
        file_bytes=args.file_bytes,
        max_articles=args.max_articles,
    )


if __name__ == "__main__":
    download.run_main(main)
