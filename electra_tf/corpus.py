"""Pretraining corpora: finding the input files and reading them as lines grouped into documents.

A corpus is read as a stream of stripped, non-empty lines in which an empty string marks the end
of a document (it is emitted only after a document that had at least one line, and always at the
end of a file). Formats, chosen per file:

  text           one sentence or paragraph per line; a blank line ends a document (or, with
                 blanks_separate_docs=False, blank lines are ignored and each file is one document)
  wikiextractor  WikiExtractor output: `<doc id=.. url=.. title=..>` ... `</doc>`; the tags are
                 removed, each article is one document and its first line (the title) is dropped
  jsonl          JSON Lines; each object is one document, its `json_text_field` string is split
                 into paragraphs on newlines

Any of them may be compressed with gzip (.gz) or bzip2 (.bz2). Bytes that are not UTF-8 are
replaced with U+FFFD and counted. Text is read in bounded chunks, so memory does not grow with the
length of a line: a line longer than MAX_LINE_CHARS characters is cut into pieces of at most that
many characters, at the last white space inside the limit (or exactly at the limit when there is
none), and each piece is treated as a line of its own. JSON Lines are parsed a whole line at a time.

Every tool that reads a corpus (build_pretraining_data, build_vocab) defines its corpus flags with
define_flags and reads through this module, so they accept the same arguments and see the same text.
"""

from __future__ import annotations

import bz2
import codecs
import dataclasses
import gzip
import json
import os
import re
import zlib
from typing import BinaryIO, Iterator, Optional, Sequence

from absl import flags

from electra_tf import fileio
from electra_tf.errors import UserError

# The corpus flags defined by define_flags belong to the CLI that calls it (its --help lists them).
flags.disclaim_key_flags()

INPUT_FORMATS = ("auto", "text", "wikiextractor", "jsonl")
# Long enough that no real paragraph is cut (Wikipedia's longest is about 6,000 characters), short
# enough that a pathological single-line file is read in bounded memory.
MAX_LINE_CHARS = 1 << 16
READ_CHUNK_BYTES = 1 << 20
_REPLACEMENT_CHARACTER_UTF8 = "\ufffd".encode("utf-8")
_LAST_WHITESPACE = re.compile(r"\s(?=\S*\Z)")


@dataclasses.dataclass
class ReadStats:
    """What reading has seen so far; the reader adds to it as it goes."""

    bytes_read: int = 0  # bytes of the files on disk (compressed size for .gz/.bz2)
    text_bytes: int = 0  # bytes of (decompressed) text
    lines: int = 0  # non-empty lines handed on (pieces of over-long lines count separately)
    documents: int = 0
    replaced_bytes: int = 0  # invalid UTF-8 sequences replaced with U+FFFD
    line_cuts: int = 0  # cuts made in lines longer than MAX_LINE_CHARS


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines the flags that name a corpus and how to read it, the same for every tool that reads one.

    --corpus_dir (directories, files or globs, comma-separated: see list_corpus_files),
    --input_format, --blanks_separate_docs and --json_text_field (see read_line_blocks); their
    values go unchanged into the options fields of the same names.

    Args:
      flag_values: the FlagValues to define them on (absl's global FLAGS by default).
    """
    flags.DEFINE_string(
        "corpus_dir",
        None,
        "Input text: a directory (read recursively), files or globs, "
        "comma-separated; .gz and .bz2 files are decompressed.",
        flag_values=flag_values,
    )
    flags.DEFINE_bool(
        "blanks_separate_docs",
        True,
        "Whether a blank line ends a document in plain text; false: each file is one document (as for OpenWebText).",
        flag_values=flag_values,
    )
    flags.DEFINE_enum(
        "input_format",
        "auto",
        list(INPUT_FORMATS),
        "Input format; auto picks per file from its name and first bytes.",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "json_text_field",
        "text",
        "For JSON Lines input: the field holding each document's text.",
        flag_values=flag_values,
    )


def list_corpus_files(spec: str) -> list[str]:
    """Expands comma-separated directories, files and globs into a sorted list of files.

    A directory contributes every regular file below it (recursively, hidden names skipped).
    Raises UserError naming the entry that matches no file.
    """
    entries = [entry.strip() for entry in spec.split(",") if entry.strip()]
    if not entries:
        raise UserError("--corpus_dir is empty; pass a directory, file or glob of text files")
    found: set[str] = set()
    for entry in entries:
        matches: list[str] = []
        if fileio.isdir(entry):
            for root, dirs, files in fileio.walk(entry):
                dirs[:] = [name for name in dirs if not name.startswith(".")]
                matches.extend(os.path.join(root, name) for name in files if not name.startswith("."))
        elif fileio.isfile(entry):
            matches = [entry]
        elif fileio.has_magic(entry):
            for match in fileio.glob(entry, recursive=True):
                if fileio.isdir(match):
                    continue
                matches.append(match)
        else:
            raise UserError(f"{entry}: no such file or directory (from --corpus_dir)")
        if not matches:
            raise UserError(f"{entry}: matches no files (from --corpus_dir)")
        found.update(fileio.normpath(match) for match in matches)
    return sorted(found)


def _strip_compression_suffix(path: str) -> tuple[str, str | None]:
    for suffix, kind in ((".gz", "gzip"), (".bz2", "bzip2")):
        if path.endswith(suffix):
            return path[: -len(suffix)], kind
    return path, None


def _open_binary(path: str) -> tuple[BinaryIO, BinaryIO]:
    """Returns (stream of decompressed bytes, the raw file) for progress by position on disk."""
    try:
        if fileio.isdir(path):
            raise IsADirectoryError(path)
        if fileio.is_remote(path) and not fileio.exists(path):
            raise FileNotFoundError(path)
        raw = fileio.open(path, "rb")
    except FileNotFoundError:
        raise UserError(f"{path}: file not found (it was listed from --corpus_dir but has gone)") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, expected a text file") from None
    except OSError as error:
        raise UserError(f"{path}: cannot read ({error.strerror}); check its permissions") from None
    _, compression = _strip_compression_suffix(path)
    if compression == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb"), raw
    if compression == "bzip2":
        return bz2.BZ2File(raw, mode="rb"), raw
    return raw, raw


def detect_format(path: str, first_bytes: bytes) -> str:
    """Picks text, wikiextractor or jsonl from the file name and its first bytes."""
    base, _ = _strip_compression_suffix(path)
    if base.endswith((".jsonl", ".json", ".ndjson")):
        return "jsonl"
    head = first_bytes.lstrip()
    if head.startswith(b"<doc ") or head.startswith(b"<doc>"):
        return "wikiextractor"
    if head.startswith(b"{"):
        return "jsonl"
    return "text"


class _ChunkDecoder:
    """Incremental UTF-8 decoding that replaces and counts invalid bytes."""

    def __init__(self, stats: ReadStats):
        self._pending = b""
        self._stats = stats

    def decode(self, data: bytes, final: bool) -> str:
        data = self._pending + data if self._pending else data
        try:
            text, consumed = codecs.utf_8_decode(data, "strict", final)
        except UnicodeDecodeError:
            text, consumed = codecs.utf_8_decode(data, "replace", final)
            # Every invalid sequence became one U+FFFD; genuine U+FFFDs in the input are not errors.
            real = data[:consumed].count(_REPLACEMENT_CHARACTER_UTF8)
            self._stats.replaced_bytes += text.count("\ufffd") - real
        self._pending = data[consumed:]
        return text


def _cut_overlong(line: str, stats: ReadStats) -> list[str]:
    """Cuts a line into pieces of at most MAX_LINE_CHARS characters, at white space if possible."""
    pieces = []
    while len(line) > MAX_LINE_CHARS:
        match = _LAST_WHITESPACE.search(line, 0, MAX_LINE_CHARS)
        cut = match.start() if match and match.start() > 0 else MAX_LINE_CHARS
        pieces.append(line[:cut])
        line = line[cut:].lstrip()
        stats.line_cuts += 1
    pieces.append(line)
    return pieces


def _cut_overlong_lines(lines: list[str], stats: ReadStats) -> list[str]:
    if not lines or max(map(len, lines)) <= MAX_LINE_CHARS:
        return lines
    result: list[str] = []
    for line in lines:
        if len(line) > MAX_LINE_CHARS:
            result.extend(_cut_overlong(line, stats))
        else:
            result.append(line)
    return result


def _raw_line_blocks(path: str, stats: ReadStats) -> Iterator[list[str]]:
    """The lines of a file (not yet stripped), one block per chunk read, none over MAX_LINE_CHARS.

    Memory is bounded by READ_CHUNK_BYTES plus MAX_LINE_CHARS: the unfinished last line of a chunk
    is carried into the next one, and cut first when it has grown past MAX_LINE_CHARS.
    """
    stream, raw = _open_binary(path)
    decoder = _ChunkDecoder(stats)
    carry = ""
    position = 0
    with stream, raw:
        while True:
            try:
                data = stream.read(READ_CHUNK_BYTES)
            except (OSError, EOFError, ValueError, zlib.error) as error:
                raise UserError(f"{path}: cannot read or decompress ({error})") from None
            final = not data
            text = decoder.decode(data, final)
            stats.text_bytes += len(data)
            new_position = raw.tell()
            stats.bytes_read += new_position - position
            position = new_position
            lines = (carry + text).split("\n") if carry else text.split("\n")
            carry = "" if final else lines.pop()
            if len(carry) > MAX_LINE_CHARS:
                pieces = _cut_overlong(carry, stats)
                carry = pieces.pop()
                lines.extend(pieces)
            lines = _cut_overlong_lines(lines, stats)
            if lines:
                yield lines
            if final:
                return


def _peek_first_bytes(path: str) -> bytes:
    stream, raw = _open_binary(path)
    try:
        with stream, raw:
            return stream.read(256)
    except (OSError, EOFError, ValueError, zlib.error) as error:
        raise UserError(f"{path}: cannot read or decompress ({error})") from None


def _text_blocks(path, stats, blanks_separate_docs) -> Iterator[list[str]]:
    in_document = False
    for raw_lines in _raw_line_blocks(path, stats):
        block = []
        for line in raw_lines:
            line = line.strip()
            if line:
                block.append(line)
                in_document = True
            elif blanks_separate_docs and in_document:
                block.append("")
                in_document = False
        if block:
            yield block
    if in_document:
        yield [""]


def _wikiextractor_blocks(path, stats) -> Iterator[list[str]]:
    has_lines = False
    skip_title = False
    for raw_lines in _raw_line_blocks(path, stats):
        block = []
        for line in raw_lines:
            line = line.strip()
            if not line:
                continue
            if line.startswith("<doc") and (line.startswith("<doc ") or line == "<doc>") and line.endswith(">"):
                if has_lines:  # a missing </doc>: the new tag still starts a new article
                    block.append("")
                has_lines, skip_title = False, True
            elif line == "</doc>":
                if has_lines:
                    block.append("")
                has_lines, skip_title = False, False
            elif skip_title:
                skip_title = False
            else:
                block.append(line)
                has_lines = True
        if block:
            yield block
    if has_lines:
        yield [""]


def _jsonl_blocks(path, stats, text_field) -> Iterator[list[str]]:
    stream, raw = _open_binary(path)
    decoder = _ChunkDecoder(stats)
    position = 0
    block: list[str] = []
    block_chars = 0
    with stream, raw:
        for line_number, data in enumerate(stream, start=1):
            text = decoder.decode(data, True)
            stats.text_bytes += len(data)
            new_position = raw.tell()
            stats.bytes_read += new_position - position
            position = new_position
            text = text.strip()
            if not text:
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as error:
                raise UserError(
                    f"{path}:{line_number}: not valid JSON ({error.msg} at column {error.colno}); "
                    "JSON Lines need one object per line (pass --input_format=text if this is plain text)"
                ) from None
            if not isinstance(record, dict) or text_field not in record:
                raise UserError(
                    f"{path}:{line_number}: no {text_field!r} field in this JSON line; "
                    "pass --json_text_field with the name of the field holding the text"
                )
            value = record[text_field]
            if not isinstance(value, str):
                raise UserError(
                    f"{path}:{line_number}: field {text_field!r} is {type(value).__name__}, expected a string"
                )
            paragraphs = [p for p in (p.strip() for p in value.split("\n")) if p]
            paragraphs = _cut_overlong_lines(paragraphs, stats)
            if paragraphs:
                block.extend(paragraphs)
                block.append("")
                block_chars += len(value)
            if block_chars >= READ_CHUNK_BYTES:
                yield block
                block, block_chars = [], 0
    if block:
        yield block


def read_line_blocks(
    path: str,
    stats: ReadStats,
    *,
    input_format: str = "auto",
    blanks_separate_docs: bool = True,
    json_text_field: str = "text",
) -> Iterator[list[str]]:
    """Yields one file's lines in blocks (lists of stripped non-empty strings, "" = end of document).

    The last document of the file always ends with "". `stats` is updated while reading.
    Raises UserError for an unreadable file or a bad JSON line.
    """
    if input_format not in INPUT_FORMATS:
        raise UserError(f"--input_format={input_format} is not one of {', '.join(INPUT_FORMATS)}")
    if input_format == "auto":
        input_format = detect_format(path, _peek_first_bytes(path))
    if input_format == "jsonl":
        blocks = _jsonl_blocks(path, stats, json_text_field)
    elif input_format == "wikiextractor":
        blocks = _wikiextractor_blocks(path, stats)
    else:
        blocks = _text_blocks(path, stats, blanks_separate_docs)
    for block in blocks:
        document_ends = block.count("")
        stats.documents += document_ends
        stats.lines += len(block) - document_ends
        yield block


def read_text_blocks(
    paths: Sequence[str],
    stats: ReadStats,
    *,
    max_lines: Optional[int] = None,
    input_format: str = "auto",
    blanks_separate_docs: bool = True,
    json_text_field: str = "text",
) -> Iterator[list[str]]:
    """The non-empty lines of several files in order, in blocks, without the document ends.

    For consumers that need the text but not its documents (learning a vocabulary). The files are
    read exactly as read_line_blocks reads them, so every tool sees the same text in a corpus.

    Args:
      paths: files to read, in this order (as from list_corpus_files).
      stats: updated while reading; `lines` counts only the lines handed on.
      max_lines: stop after this many lines (None: read everything).
      input_format, blanks_separate_docs, json_text_field: as for read_line_blocks.

    Returns:
      An iterator of non-empty lists of stripped non-empty strings.
    """
    remaining = max_lines
    for path in paths:
        blocks = read_line_blocks(
            path,
            stats,
            input_format=input_format,
            blanks_separate_docs=blanks_separate_docs,
            json_text_field=json_text_field,
        )
        try:
            for block in blocks:
                lines = [line for line in block if line]
                if remaining is not None:
                    if len(lines) >= remaining:
                        # read_line_blocks counted the whole block; count only what is used.
                        stats.lines -= len(lines) - remaining
                        lines = lines[:remaining]
                    remaining -= len(lines)
                if lines:
                    yield lines
                if remaining == 0:
                    return
        finally:
            blocks.close()  # closes the file now, not whenever the generator is collected


def read_lines(path: str, **kwargs) -> Iterator[str]:
    """Like read_line_blocks, one line at a time (for tests and small tools)."""
    stats = kwargs.pop("stats", None) or ReadStats()
    for block in read_line_blocks(path, stats, **kwargs):
        yield from block
