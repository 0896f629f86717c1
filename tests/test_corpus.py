"""Corpus readers: file listing, the three formats, compression, bad bytes and over-long lines."""

import bz2
import gzip
import json
import os
import tracemalloc

import pytest

from electra_tf import corpus
from electra_tf.errors import UserError


def lines_of(path, **kwargs):
    stats = corpus.ReadStats()
    return list(corpus.read_lines(str(path), stats=stats, **kwargs)), stats


def test_list_corpus_files_directories_globs_and_missing(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("b.txt", "a.txt", "sub/c.txt", ".hidden"):
        (tmp_path / name).write_text("x\n")
    assert corpus.list_corpus_files(str(tmp_path)) == [str(tmp_path / name) for name in ("a.txt", "b.txt", "sub/c.txt")]
    spec = f"{tmp_path}/b.txt, {tmp_path}/sub/*.txt,{tmp_path}/a.txt"
    assert corpus.list_corpus_files(spec) == [str(tmp_path / name) for name in ("a.txt", "b.txt", "sub/c.txt")]
    with pytest.raises(UserError, match=r"missing.txt: no such file or directory \(from --corpus_dir\)"):
        corpus.list_corpus_files(f"{tmp_path}/a.txt,{tmp_path}/missing.txt")
    with pytest.raises(UserError, match=r"\*.json: matches no files"):
        corpus.list_corpus_files(f"{tmp_path}/*.json")


def test_plain_text_blank_lines_separate_documents(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("  First line. \nSecond line.\n\n\n \nThird line.\r\nFourth.")  # no final newline
    lines, stats = lines_of(path)
    assert lines == ["First line.", "Second line.", "", "Third line.", "Fourth.", ""]
    assert stats.documents == 2 and stats.lines == 4
    lines, stats = lines_of(path, blanks_separate_docs=False)
    assert lines == ["First line.", "Second line.", "Third line.", "Fourth.", ""]
    assert stats.documents == 1


def test_wikiextractor_tags_and_titles_are_removed(tmp_path):
    path = tmp_path / "wiki_00"
    path.write_text(
        '<doc id="12" url="http://x?curid=12" title="Anarchism">\nAnarchism\n\nAnarchism is a philosophy.\n'
        "Etymology.\n</doc>\n"
        '<doc id="25" url="http://x?curid=25" title="Autism">\nAutism\n\nAutism is a condition.\n</doc>\n'
        '<doc id="26" url="http://x?curid=26" title="Empty">\nEmpty\n\n</doc>\n'
    )
    lines, stats = lines_of(path)
    assert lines == ["Anarchism is a philosophy.", "Etymology.", "", "Autism is a condition.", ""]
    assert stats.documents == 2
    assert corpus.detect_format(str(path), path.read_bytes()[:100]) == "wikiextractor"


def test_real_wikipedia_file_has_one_document_per_article(wikipedia_dir):
    path = wikipedia_dir / "wiki_00"
    text = path.read_text(encoding="utf-8")
    articles = text.count("<doc ")
    lines, stats = lines_of(path)
    assert stats.documents == articles
    assert lines[-1] == "" and not any(line.startswith("<doc") or line == "</doc>" for line in lines)
    first_title = text.split("\n")[1]
    assert first_title not in lines[:1]


def test_jsonl_documents_paragraphs_and_custom_field(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text(
        json.dumps({"text": "Para one.\nPara two.\n\n", "id": 1})
        + "\n\n"
        + json.dumps({"text": "Only para.", "body": "x"})
        + "\n"
        + json.dumps({"text": "  \n "})
        + "\n"
    )
    lines, stats = lines_of(path)
    assert lines == ["Para one.", "Para two.", "", "Only para.", ""]
    assert stats.documents == 2
    other = tmp_path / "other.txt"
    other.write_text(json.dumps({"body": "Body text.\nMore."}) + "\n")
    lines, _ = lines_of(other, json_text_field="body")  # detected as JSON from its first byte
    assert lines == ["Body text.", "More.", ""]


def test_jsonl_errors_name_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"text": "ok"}) + "\n" + json.dumps({"content": "x"}) + "\n")
    with pytest.raises(UserError, match=r"bad.jsonl:2: no 'text' field .* --json_text_field"):
        lines_of(path)
    path.write_text(json.dumps({"text": "ok"}) + "\n{broken\n")
    with pytest.raises(UserError, match=r"bad.jsonl:2: not valid JSON"):
        lines_of(path)


@pytest.mark.parametrize("suffix, opener", [(".gz", gzip.open), (".bz2", bz2.open)])
def test_compressed_inputs(tmp_path, suffix, opener):
    plain = tmp_path / f"a.txt{suffix}"
    with opener(plain, "wt", encoding="utf-8") as handle:
        handle.write("One.\nTwo.\n\nThree.\n")
    lines, stats = lines_of(plain)
    assert lines == ["One.", "Two.", "", "Three.", ""]
    assert stats.bytes_read == os.path.getsize(plain)
    assert stats.text_bytes == len("One.\nTwo.\n\nThree.\n")
    jsonl = tmp_path / f"b.jsonl{suffix}"
    with opener(jsonl, "wt", encoding="utf-8") as handle:
        handle.write(json.dumps({"text": "J one.\nJ two."}) + "\n")
    assert lines_of(jsonl)[0] == ["J one.", "J two.", ""]
    wiki = tmp_path / f"wiki_01{suffix}"
    with opener(wiki, "wt", encoding="utf-8") as handle:
        handle.write('<doc id="1" url="u" title="T">\nT\n\nBody.\n</doc>\n')
    assert lines_of(wiki)[0] == ["Body.", ""]
    broken = tmp_path / f"broken.txt{suffix}"
    broken.write_bytes(b"this is not compressed data at all")
    with pytest.raises(UserError, match=r"broken.txt.*: cannot read or decompress"):
        lines_of(broken)


def test_non_utf8_bytes_are_replaced_and_counted(tmp_path, monkeypatch):
    path = tmp_path / "latin1.txt"
    # Two invalid bytes, a genuine U+FFFD (not an error), and an invalid byte at a chunk boundary.
    path.write_bytes("café ".encode("latin-1") + b"ok \xff \xef\xbf\xbd\n" + b"x" * 20 + b"\xe9\n")
    monkeypatch.setattr(corpus, "READ_CHUNK_BYTES", 21)
    lines, stats = lines_of(path)
    assert lines == ["caf\ufffd ok \ufffd \ufffd", "x" * 20 + "\ufffd", ""]
    assert stats.replaced_bytes == 3
    # A multi-byte character split across chunks is not an error.
    path.write_bytes("ab é ü €".encode("utf-8") * 10)
    for chunk in (1, 2, 3, 5):
        monkeypatch.setattr(corpus, "READ_CHUNK_BYTES", chunk)
        lines, stats = lines_of(path)
        assert lines == ["ab é ü €" * 10, ""] and stats.replaced_bytes == 0


def test_missing_and_unreadable_files_name_the_file(tmp_path):
    with pytest.raises(UserError, match=r"gone.txt: file not found"):
        lines_of(tmp_path / "gone.txt")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(UserError, match=r"dangling: file not found"):
        lines_of(tmp_path / "dangling")
    with pytest.raises(UserError, match=r"is a directory"):
        lines_of(tmp_path)


def test_overlong_line_is_cut_at_white_space_in_bounded_memory(tmp_path):
    path = tmp_path / "one_line.txt"
    word = "abcdefghij" * 3 + " "  # 31 characters per word
    words_per_block = 1 << 15
    blocks = 20  # about 20 MB in a single line
    with open(path, "w") as handle:
        for _ in range(blocks):
            handle.write(word * words_per_block)
        handle.write("\nnext line\n")
    stats = corpus.ReadStats()
    tracemalloc.start()
    try:
        pieces = 0
        characters = 0
        last = None
        for block in corpus.read_line_blocks(str(path), stats):
            for line in block:
                assert len(line) <= corpus.MAX_LINE_CHARS
                if line and line != "next line":
                    assert line.startswith("abc") and line.endswith("hij")  # cut at white space
                    pieces += 1
                    characters += len(line) + 1
                last = line if line else last
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert characters == len(word) * words_per_block * blocks  # nothing lost but the cut spaces
    assert pieces == stats.line_cuts + 1
    assert last == "next line"
    assert peak < 12 * corpus.READ_CHUNK_BYTES, f"reading held {peak / 1e6:.1f} MB"


def test_cut_without_white_space_is_exact():
    stats = corpus.ReadStats()
    line = "x" * (corpus.MAX_LINE_CHARS * 2 + 5)
    pieces = corpus._cut_overlong(line, stats)
    assert [len(piece) for piece in pieces] == [corpus.MAX_LINE_CHARS, corpus.MAX_LINE_CHARS, 5]


def test_read_text_blocks_drops_document_ends_and_stops_at_max_lines(tmp_path):
    (tmp_path / "a.txt").write_text('<doc id="1" url="u" title="T">\nT\n\nFirst para.\n</doc>\n', encoding="utf-8")
    (tmp_path / "b.txt").write_text("Second file.\n\nThird.\nFourth.\n", encoding="utf-8")
    paths = corpus.list_corpus_files(str(tmp_path))
    stats = corpus.ReadStats()
    assert list(corpus.read_text_blocks(paths, stats)) == [["First para."], ["Second file.", "Third.", "Fourth."]]
    assert (stats.lines, stats.documents) == (4, 3)
    stats = corpus.ReadStats()
    blocks = list(corpus.read_text_blocks(paths, stats, max_lines=2))
    assert blocks == [["First para."], ["Second file."]] and stats.lines == 2
    assert list(corpus.read_text_blocks(paths, corpus.ReadStats(), max_lines=1)) == [["First para."]]
    with pytest.raises(UserError, match="--input_format=csv is not one of"):
        list(corpus.read_text_blocks(paths, corpus.ReadStats(), input_format="csv"))
