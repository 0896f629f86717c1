"""An English pretraining corpus that ships with Python itself, for offline demos.

Sources, read without importing any module:
  * `pydoc_data.topics.topics`: the language reference's help topics, one document per topic;
  * docstrings and comment blocks of standard-library modules, parsed from the .py sources with
    `ast` (test packages, site-packages and the GUI packages idlelib/tkinter/turtledemo are
    skipped, and so is any file that fails to parse): one document for a module's top-level
    prose and one per top-level class (its docstring, its methods' and the comments inside it),
    each in source order. Comments roughly double what docstrings alone give (~1.5 MB).

Output: plain-text shards, one paragraph per line, a blank line after each document (the layout
the pretraining-data builder reads). Wrapped lines of a paragraph are joined; doctest blocks,
indented code, tables and heading underlines are dropped; a paragraph seen before is not repeated
(many generated modules share docstrings). Everything is in sorted order, so the output is the same
on every run of the same Python.

    python -m electra_tf.default_corpus --output_dir=/tmp/corpus
"""

from __future__ import annotations

import ast
import os
import re
import sysconfig
import warnings
from pydoc_data.topics import topics  # plain data: a dict of help texts
from typing import Iterator, Optional

from absl import flags

from electra_tf import cli, fileio
from electra_tf.errors import UserError
from electra_tf.progress import ProgressReporter

SHARD_PREFIX = "python_docs_"
SHARD_BYTES = 1_000_000
SKIPPED_DIRECTORIES = frozenset(
    {"test", "tests", "idle_test", "idlelib", "tkinter", "turtledemo", "site-packages", "dist-packages", "__pycache__"}
)

# Indentation (after the docstring's common indentation is removed) from which a block is code.
_CODE_INDENT = 3
_UNDERLINE = re.compile(r"^\s*([*=\-~^#+])\1{2,}\s*$")
_TABLE_LINE = re.compile(r"^\s*(\+[-=+]+\+|\|.*\|)\s*$")
_SPACES = re.compile(r"\s+")
_MIN_WORDS = 3
# Comments hold commented-out code and terse notes more often than docstrings do.
_MIN_COMMENT_WORDS = 6
_CODING_LINE = re.compile(r"^#.*coding[:=]")


def stdlib_directory() -> str:
    """The folder of this Python's standard-library sources, which the corpus is read from."""
    return sysconfig.get_paths()["stdlib"]


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def paragraphs_from_text(text: str) -> list[str]:
    """Splits reST-like documentation into prose paragraphs, one line each.

    A paragraph is a run of non-blank lines; it is dropped when it holds a doctest (`>>>`) or is
    indented code (every line indented at least _CODE_INDENT). Table rows, heading underlines and
    deeply indented lines are removed from what is kept.
    """
    text = text.expandtabs(8).replace("\r\n", "\n")
    paragraphs = []
    for block in re.split(r"\n\s*\n", text):
        lines = [line.rstrip() for line in block.split("\n") if line.strip()]
        if not lines:
            continue
        if any(line.lstrip().startswith((">>>", "... ")) or line.strip() == "..." for line in lines):
            continue
        if all(_indent(line) >= _CODE_INDENT for line in lines):
            continue
        base = min(_indent(line) for line in lines)
        kept = [
            line.strip()
            for line in lines
            if not _UNDERLINE.match(line)
            and not _TABLE_LINE.match(line)
            and _indent(line) - base < 2 * _CODE_INDENT + 2
        ]
        paragraph = _SPACES.sub(" ", " ".join(kept)).strip()
        if len(paragraph.split(" ")) >= _MIN_WORDS and sum(c.isalpha() for c in paragraph) * 2 >= len(paragraph):
            paragraphs.append(paragraph)
    return paragraphs


def _docstring_items(tree: ast.Module) -> list[tuple[int, str]]:
    """(line number, cleaned docstring) of the module and of every class and function."""
    items = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=True)
            if doc:
                items.append((node.body[0].lineno, doc))
    return items


def _comment_items(source_lines: list[str], tree: ast.Module) -> list[tuple[int, str]]:
    """(first line number, text) of each block of consecutive '#' comment lines.

    Lines inside multi-line string literals are not comments, so they are excluded using the
    parse tree (a '#' line in a docstring's example would otherwise be read twice).
    """
    in_string = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.end_lineno != node.lineno:
            in_string.update(range(node.lineno, node.end_lineno + 1))
    items, block, block_start = [], [], 0
    for number, line in enumerate(source_lines + [""], start=1):
        stripped = line.strip()
        if (
            stripped.startswith("#")
            and number not in in_string
            and not stripped.startswith("#!")
            and not _CODING_LINE.match(stripped)
        ):
            if not block:
                block_start = number
            # Drop the '#' and one space, keeping any further indentation as a code signal.
            text = stripped[1:]
            block.append(text[1:] if text.startswith(" ") else text)
        elif block:
            items.append((block_start, "\n".join(block)))
            block = []
    return items


def _module_documents(relative: str, source: bytes) -> list[tuple[str, list[str]]]:
    """Documents of one module: its top-level prose, then one per top-level class.

    Prose (docstrings and comment blocks) goes, in source order, to the top-level class whose
    lines contain it, otherwise to the module's own document.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # invalid escape sequences in old sources
        tree = ast.parse(source)
    text = source.decode("utf-8")
    class_spans = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            class_spans.append((first, node.end_lineno, node.name))
    groups: dict[str, list[tuple[int, list[str]]]] = {}
    items = [(line, paragraphs_from_text(doc)) for line, doc in _docstring_items(tree)]
    items += [
        (line, [p for p in paragraphs_from_text(comment) if len(p.split(" ")) >= _MIN_COMMENT_WORDS])
        for line, comment in _comment_items(text.split("\n"), tree)
    ]
    for line, paragraphs in items:
        owner = next((name for first, last, name in class_spans if first <= line <= last), "")
        groups.setdefault(owner, []).append((line, paragraphs))
    order = [""] + [name for _, _, name in class_spans]
    documents = []
    for owner in order:
        if owner in groups:
            paragraphs = [p for _, ps in sorted(groups[owner], key=lambda item: item[0]) for p in ps]
            name = f"module:{relative}" + (f":{owner}" if owner else "")
            documents.append((name, paragraphs))
    return documents


def _stdlib_sources(root: str) -> Iterator[tuple[str, str]]:
    """(relative path, absolute path) of the standard library's .py files, sorted."""
    found = []
    for directory, subdirectories, files in os.walk(root):  # the installed stdlib, not a user path
        subdirectories[:] = sorted(
            d for d in subdirectories if d not in SKIPPED_DIRECTORIES and not d.startswith("test_")
        )
        for name in files:
            if name.endswith(".py") and not name.startswith("test_"):
                path = os.path.join(directory, name)
                found.append((os.path.relpath(path, root).replace(os.sep, "/"), path))
    return iter(sorted(found))


def iter_documents(stdlib_root: Optional[str] = None) -> Iterator[tuple[str, list[str]]]:
    """Yields (document name, paragraphs): help topics first, then one per stdlib module."""
    seen: set[str] = set()

    def fresh(paragraphs: list[str]) -> list[str]:
        unique = []
        for paragraph in paragraphs:
            if paragraph not in seen:
                seen.add(paragraph)
                unique.append(paragraph)
        return unique

    for name in sorted(topics):
        paragraphs = fresh(paragraphs_from_text(topics[name]))
        if paragraphs:
            yield f"topic:{name}", paragraphs

    for relative, path in _stdlib_sources(stdlib_root or stdlib_directory()):
        try:
            with open(path, "rb") as handle:
                documents = _module_documents(relative, handle.read())
        except (SyntaxError, ValueError, OSError, UnicodeDecodeError, RecursionError):
            continue
        for name, paragraphs in documents:
            paragraphs = fresh(paragraphs)
            if paragraphs:
                yield name, paragraphs


def write_default_corpus(output_dir: str, max_bytes: Optional[int] = None, overwrite: bool = False) -> dict:
    """Writes the corpus as shards python_docs_NNN.txt (about 1 MB each) into output_dir.

    Stops before the document that would take the total past max_bytes. Refuses a non-empty
    output_dir unless overwrite=True, in which case only earlier python_docs_*.txt shards there are
    replaced. Returns {"files", "paths", "documents", "lines", "bytes", "words"} (lines counts
    paragraph lines, not the blank separators).
    """
    output_dir = os.fspath(output_dir)
    if fileio.exists(output_dir) and not fileio.isdir(output_dir):
        raise UserError(f"{output_dir}: exists and is not a directory; choose a new directory for the corpus")
    existing = sorted(fileio.listdir(output_dir)) if fileio.isdir(output_dir) else []
    if existing and not overwrite:
        raise UserError(
            f"{output_dir}: directory is not empty ({len(existing)} entries); "
            "choose a new directory or pass --overwrite"
        )
    fileio.makedirs(output_dir)
    for name in existing:
        if name.startswith(SHARD_PREFIX) and name.endswith(".txt"):
            fileio.remove(os.path.join(output_dir, name))

    stats = {"files": 0, "paths": [], "documents": 0, "lines": 0, "bytes": 0, "words": 0}
    progress = ProgressReporter(name="default_corpus", total=max_bytes, total_key="bytes")
    shard, shard_bytes = None, 0
    try:
        for _, paragraphs in iter_documents():
            document = "".join(paragraph + "\n" for paragraph in paragraphs) + "\n"
            size = len(document.encode("utf-8"))
            if max_bytes is not None and stats["bytes"] + size > max_bytes:
                break
            if shard is None or shard_bytes >= SHARD_BYTES:
                if shard is not None:
                    shard.close()
                path = os.path.join(output_dir, f"{SHARD_PREFIX}{stats['files']:03d}.txt")
                shard = fileio.open(path, "w")
                stats["files"] += 1
                stats["paths"].append(path)
                shard_bytes = 0
            shard.write(document)
            shard_bytes += size
            words = sum(len(paragraph.split()) for paragraph in paragraphs)
            stats["documents"] += 1
            stats["lines"] += len(paragraphs)
            stats["bytes"] += size
            stats["words"] += words
            progress.update(bytes=size, documents=1)
    finally:
        if shard is not None:
            shard.close()
    progress.finish()
    return stats


def summary_line(stats: dict, output_dir: str) -> str:
    """One line describing what write_default_corpus wrote (its returned stats) to output_dir."""
    return (
        f"wrote {stats['files']} files to {output_dir}: {stats['documents']:,} documents, "
        f"{stats['lines']:,} paragraphs, {stats['words']:,} words, {stats['bytes'] / 1e6:.2f} MB"
    )


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines the command line's flags on flag_values (only when run as a program: the demo has its own)."""
    flags.DEFINE_string(
        "output_dir", None, "Directory to write python_docs_NNN.txt into (new or empty).", flag_values=flag_values
    )
    flags.DEFINE_integer("max_bytes", None, "Stop before the corpus exceeds this many bytes.", flag_values=flag_values)
    flags.DEFINE_bool(
        "overwrite", False, "Replace python_docs_*.txt shards in a non-empty output_dir.", flag_values=flag_values
    )
    flags.mark_flag_as_required("output_dir", flag_values=flag_values)


def main(argv: list[str]) -> None:
    """Writes the standard-library corpus: flags -> write_default_corpus, then prints its summary line."""
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {' '.join(argv[1:])}; every option is a --flag")
    options = flags.FLAGS
    stats = write_default_corpus(options.output_dir, max_bytes=options.max_bytes, overwrite=options.overwrite)
    print(summary_line(stats, options.output_dir))


if __name__ == "__main__":
    define_flags()
    cli.run(main)
