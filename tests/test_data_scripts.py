"""The data/ download scripts, against a local HTTP server (127.0.0.1 only) that serves small
fixtures in the real formats and honours Range requests: resume, dropped connections, checksum
and overwrite refusals, and the layouts run_finetuning and build_pretraining_data read."""

from __future__ import annotations

import bz2
import hashlib
import http.server
import io
import json
import pathlib
import re
import subprocess
import sys
import tarfile
import threading
import zipfile

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # data/ is a folder of scripts at the top of the repository
    sys.path.insert(0, str(REPO_ROOT))

from data import (  # noqa: E402  # noqa: E402
    download,  # noqa: E402
    download_electra,
    download_glue,
    download_openwebtext,
    download_squad,
    download_wikipedia,
    extract_wikipedia,
)
from electra_tf import corpus, finetuning_tasks  # noqa: E402
from electra_tf.errors import UserError  # noqa: E402

FIXTURES = REPO_ROOT / "tests" / "fixtures"
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


class FixtureServer:
    """http.server in a thread: serves `files` (URL path -> bytes), answers Range requests with
    206/416, and can cut one response short to imitate a dropped connection."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.headers: dict[str, dict[str, str]] = {}
        self.status: dict[str, int] = {}  # path -> an error status to always answer
        self.cut_once: dict[str, int] = {}  # path -> bytes to send before dropping, once
        self.ignore_range = False
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                path = self.path.split("?", 1)[0]
                requested = self.headers.get("Range")
                server.requests.append((path, requested))
                if path in server.status:
                    self.send_error(server.status[path])
                    return
                if path not in server.files:
                    self.send_error(404)
                    return
                data = server.files[path]
                start = 0
                match = re.fullmatch(r"bytes=(\d+)-", requested or "")
                if match and not server.ignore_range:
                    start = int(match.group(1))
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                for key, value in server.headers.get(path, {}).items():
                    self.send_header(key, value)
                self.end_headers()
                if path in server.cut_once:
                    self.wfile.write(body[: server.cut_once.pop(path)])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stop(self):
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def server():
    running = FixtureServer()
    yield running
    running.stop()


def fetch(url, destination, **kwargs):
    kwargs.setdefault("retry_wait", 0.0)
    kwargs.setdefault("timeout", 5.0)
    kwargs.setdefault("progress_interval", 0.0)
    return download.fetch(url, destination, **kwargs)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
    return buffer.getvalue()


def tar_xz_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:xz") as bundle:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            bundle.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def one_line_error(function, *args, **kwargs) -> str:
    with pytest.raises(UserError) as caught:
        function(*args, **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------------------------------------
# The shared download module


PAYLOAD = bytes(range(256)) * 1200  # 307,200 bytes: several read chunks


def test_interrupted_download_resumes_from_the_partial_file(server, tmp_path):
    server.files["/big.bin"] = PAYLOAD
    destination = tmp_path / "big.bin"
    half = len(PAYLOAD) // 2
    (tmp_path / "big.bin.part").write_bytes(PAYLOAD[:half])  # what a killed run leaves
    fetch(server.url + "/big.bin", destination, checksums={"md5": md5(PAYLOAD)}, size=len(PAYLOAD))
    assert destination.read_bytes() == PAYLOAD
    assert not (tmp_path / "big.bin.part").exists()
    assert server.requests == [("/big.bin", f"bytes={half}-")]


def test_dropped_connection_is_resumed_within_bounded_attempts(server, tmp_path, capsys):
    server.files["/big.bin"] = PAYLOAD
    server.cut_once["/big.bin"] = 100_000
    fetch(
        server.url + "/big.bin",
        tmp_path / "big.bin",
        checksums={"sha256": hashlib.sha256(PAYLOAD).hexdigest()},
        attempts=3,
    )
    assert (tmp_path / "big.bin").read_bytes() == PAYLOAD
    assert server.requests == [("/big.bin", None), ("/big.bin", "bytes=100000-")]
    progress = capsys.readouterr().err
    assert "MB/s" in progress and "ETA" in progress and "100.0%" in progress


def test_server_that_ignores_range_restarts_the_file(server, tmp_path):
    server.files["/big.bin"] = PAYLOAD
    server.ignore_range = True
    (tmp_path / "big.bin.part").write_bytes(b"stale bytes")
    fetch(server.url + "/big.bin", tmp_path / "big.bin")
    assert (tmp_path / "big.bin").read_bytes() == PAYLOAD


def test_checksum_mismatch_is_refused_and_the_file_is_not_put_in_place(server, tmp_path):
    server.files["/a.json"] = b'{"data": []}'
    destination = tmp_path / "a.json"
    message = one_line_error(fetch, server.url + "/a.json", destination, checksums={"md5": "0" * 32})
    assert "a.json: md5 checksum mismatch" in message and "--overwrite" in message
    assert not destination.exists() and (tmp_path / "a.json.part").exists()
    # A rerun does not download again (the server has nothing more) and still refuses.
    one_line_error(fetch, server.url + "/a.json", destination, checksums={"md5": "0" * 32})
    assert server.requests[-1] == ("/a.json", "bytes=12-")
    # The published size is checked before any byte is written.
    message = one_line_error(fetch, server.url + "/a.json", tmp_path / "b.json", size=99)
    assert "published size is 99" in message and not (tmp_path / "b.json").exists()


def test_server_published_md5_is_checked(server, tmp_path):
    server.files["/model.zip"] = b"zip bytes"
    server.headers["/model.zip"] = {
        "x-goog-hash": "crc32c=AAAAAA==, md5="
        + __import__("base64").b64encode(hashlib.md5(b"other bytes").digest()).decode()
    }
    message = one_line_error(fetch, server.url + "/model.zip", tmp_path / "model.zip")
    assert "md5 checksum mismatch" in message


def test_existing_output_is_refused_without_overwrite(server, tmp_path):
    server.files["/a.txt"] = b"new"
    destination = tmp_path / "a.txt"
    destination.write_bytes(b"mine")
    message = one_line_error(fetch, server.url + "/a.txt", destination)
    assert message == f"{destination}: already exists; pass --overwrite to download it again"
    assert destination.read_bytes() == b"mine" and server.requests == []
    fetch(server.url + "/a.txt", destination, overwrite=True)
    assert destination.read_bytes() == b"new"


def test_reused_download_that_fails_verification_needs_overwrite(server, tmp_path):
    server.files["/a.zip"] = b"good bytes"
    destination = tmp_path / "a.zip"
    destination.write_bytes(b"corrupted!")
    checksums = {"md5": md5(b"good bytes")}
    message = one_line_error(fetch, server.url + "/a.zip", destination, checksums=checksums, reuse=True)
    assert "md5 checksum mismatch" in message and destination.read_bytes() == b"corrupted!"
    fetch(server.url + "/a.zip", destination, checksums=checksums, reuse=True, overwrite=True)
    assert destination.read_bytes() == b"good bytes" and len(server.requests) == 1
    fetch(server.url + "/a.zip", destination, checksums=checksums, reuse=True, overwrite=True)
    assert len(server.requests) == 1  # verified: kept, not fetched again


def test_failing_server_gives_up_after_the_allowed_attempts(server, tmp_path):
    server.status["/busy"] = 503
    message = one_line_error(fetch, server.url + "/busy", tmp_path / "busy", attempts=3)
    assert "HTTP 503" in message
    assert len(server.requests) == 3
    message = one_line_error(fetch, server.url + "/missing", tmp_path / "missing", attempts=3)
    assert "HTTP 404" in message and "--base_url" in message and len(server.requests) == 4


def test_zip_members_outside_the_folder_are_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    archive.write_bytes(zip_bytes({"../escape.txt": b"x"}))
    message = one_line_error(download.extract_zip, archive, tmp_path / "out")
    assert "points outside" in message and not (tmp_path / "escape.txt").exists()


# ---------------------------------------------------------------------------------------------
# GLUE


def glue_fixture_files() -> dict[str, bytes]:
    cola = b"".join(f"gj04\t{i % 2}\t\tSentence number {i} is here .\n".encode() for i in range(6))
    sst_train = b"sentence\tlabel\n" + b"".join(f"a film {i} \t{i % 2}\n".encode() for i in range(6))
    sst_test = b"index\tsentence\n" + b"".join(f"{i}\ta film {i} \n".encode() for i in range(3))
    cola_test = b"index\tsentence\n" + b"".join(f"{i}\tA test {i} .\n".encode() for i in range(3))
    folder = {name: (FIXTURES / "glue" / name) for name in ("MNLI", "QNLI", "QQP")}
    files = {
        "/glue/data/CoLA.zip": zip_bytes(
            {
                "CoLA/train.tsv": cola,
                "CoLA/dev.tsv": cola,
                "CoLA/test.tsv": cola_test,
                "CoLA/original/raw/in_domain_train.tsv": cola,
            }
        ),
        "/glue/data/SST-2.zip": zip_bytes(
            {"SST-2/train.tsv": sst_train, "SST-2/dev.tsv": sst_train, "SST-2/test.tsv": sst_test}
        ),
        # GLUE's QNLIv2.zip unpacks to QNLI/, QQP-clean.zip to QQP/.
        "/glue/data/QNLIv2.zip": zip_bytes(
            {f"QNLI/{path.name}": path.read_bytes() for path in folder["QNLI"].iterdir()}
        ),
        "/glue/data/QQP-clean.zip": zip_bytes(
            {f"QQP/{path.name}": path.read_bytes() for path in folder["QQP"].iterdir()}
        ),
        "/glue/data/MNLI.zip": zip_bytes({f"MNLI/{path.name}": path.read_bytes() for path in folder["MNLI"].iterdir()}),
        "/glue/data/AX.tsv": b"index\tsentence1\tsentence2\n0\tA dog .\tAn animal .\n",
    }
    header = "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\r\n".encode()
    rows = [f"{i % 2}\t{100 + i}\t{200 + i}\tFirst sentence {i}.\tSecond sentence {i}.\r\n" for i in range(5)]
    files["/senteval/senteval_data/msr_paraphrase_train.txt"] = header + "".join(rows).encode()
    files["/senteval/senteval_data/msr_paraphrase_test.txt"] = header + "".join(rows[:2]).encode()
    files["/glue/data/mrpc_dev_ids.tsv"] = b"101\t201\n103\t203\n"
    return files


@pytest.fixture
def glue_server(server, monkeypatch):
    server.files.update(glue_fixture_files())
    checked = {name: (path, md5(server.files["/" + path])) for name, (path, _) in download_glue.MRPC_FILES.items()}
    monkeypatch.setattr(download_glue, "MRPC_FILES", checked)
    return server


def test_glue_layout_is_what_run_finetunings_reader_reads(glue_server, tmp_path):
    output = tmp_path / "glue"
    download_glue.main(
        [
            f"--output_dir={output}",
            f"--base_url={glue_server.url}",
            "--tasks=cola,sst-2,mrpc,qnli,qqp,mnli,diagnostic",
            "--timeout=5",
        ]
    )
    for name in ("cola", "sst-2", "mrpc", "qnli", "qqp", "mnli"):
        task = finetuning_tasks.get_task(name)
        for split in ("train",) + task.dev_splits + task.test_splits:
            examples, stats = finetuning_tasks.read_glue_split(str(output), task, split)
            assert examples and stats["file"] == str(output / task.directory / f"{split}.tsv")
    mrpc = finetuning_tasks.get_task("mrpc")
    train, _ = finetuning_tasks.read_glue_split(str(output), mrpc, "train")
    dev, _ = finetuning_tasks.read_glue_split(str(output), mrpc, "dev")
    test, _ = finetuning_tasks.read_glue_split(str(output), mrpc, "test")
    assert (
        [e.text_a for e in dev] == ["First sentence 1.", "First sentence 3."]
        and len(train) == 3
        and [e.guid for e in test] == ["0", "1"]
    )
    assert (output / "CoLA" / "original" / "raw" / "in_domain_train.tsv").is_file()
    assert (output / "diagnostic" / "diagnostic.tsv").read_bytes().startswith(b"index\t")
    assert not list(output.glob(".*"))  # no staging folders left behind
    # A second run refuses before downloading anything; --overwrite replaces.
    before = len(glue_server.requests)
    message = one_line_error(
        download_glue.main, [f"--output_dir={output}", f"--base_url={glue_server.url}", "--tasks=rte,cola"]
    )
    assert message.startswith(f"{output / 'CoLA'}: already exists; pass --overwrite")
    assert len(glue_server.requests) == before
    download_glue.main([f"--output_dir={output}", f"--base_url={glue_server.url}", "--tasks=cola", "--overwrite"])
    assert len(glue_server.requests) == before  # the verified archive was reused


def test_glue_cli_reports_one_line_errors(glue_server, tmp_path):
    (tmp_path / "glue" / "SST-2").mkdir(parents=True)
    script = REPO_ROOT / "data" / "download_glue.py"
    result = subprocess.run(
        [
            sys.executable,
            str(script),
            f"--output_dir={tmp_path / 'glue'}",
            f"--base_url={glue_server.url}",
            "--tasks=sst-2",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"download_glue.py: error: {tmp_path / 'glue' / 'SST-2'}: already exists; pass "
        "--overwrite to replace it (or choose another --output_dir)"
    ]
    message = one_line_error(download_glue.main, [f"--output_dir={tmp_path}", "--tasks=squad"])
    assert "unknown GLUE task 'squad'" in message


def test_mrpc_is_rebuilt_byte_identically_from_its_sources(tmp_path):
    mrpc = REPO_ROOT.parent / "shared" / "data" / "glue" / "MRPC"
    if not (mrpc / "msr_paraphrase_train.txt").is_file():
        pytest.skip(f"shared GLUE data not found at {mrpc}")
    counts = download_glue.write_mrpc(
        mrpc / "msr_paraphrase_train.txt", mrpc / "msr_paraphrase_test.txt", mrpc / "dev_ids.tsv", tmp_path
    )
    assert counts == {"train": 3668, "dev": 408, "test": 1725}
    for name in ("train.tsv", "dev.tsv", "test.tsv"):
        assert (tmp_path / name).read_bytes() == (mrpc / name).read_bytes(), name


# ---------------------------------------------------------------------------------------------
# SQuAD


SQUAD_V1 = {
    "version": "1.1",
    "data": [
        {
            "title": "T",
            "paragraphs": [
                {
                    "context": "The cat sat on the mat.",
                    "qas": [
                        {
                            "id": "q1",
                            "question": "Where did the cat sit?",
                            "answers": [{"text": "on the mat", "answer_start": 12}],
                        }
                    ],
                }
            ],
        }
    ],
}


def test_squad_files_are_verified_and_found_by_run_finetuning(server, tmp_path, monkeypatch):
    from electra_tf import squad
    from electra_tf.finetuning import squad_file

    v1 = json.dumps(SQUAD_V1).encode()
    served = {"train-v1.1.json": v1, "dev-v1.1.json": v1}
    for name in ("train-v2.0.json", "dev-v2.0.json"):
        served[name] = (FIXTURES / "squad_v2" / name).read_bytes()
    server.files.update({f"/dataset/{name}": data for name, data in served.items()})
    monkeypatch.setattr(
        download_squad,
        "FILES",
        {version: {name: md5(served[name]) for name in names} for version, names in download_squad.FILES.items()},
    )
    output = tmp_path / "squad"
    download_squad.main([f"--output_dir={output}", f"--base_url={server.url}/dataset"])
    for task_name in ("squad-v1.1", "squad-v2.0"):
        task = finetuning_tasks.get_task(task_name)
        for name, training in ((task.train_file, True), (task.dev_file, False)):
            path = squad_file(str(output), name, task.version)
            examples, _ = squad.read_squad(path, is_training=training, version=task.version)
            assert path == str(output / f"v{task.version}" / name) and examples
    message = one_line_error(
        download_squad.main, [f"--output_dir={output}", f"--base_url={server.url}/dataset", "--versions=2.0"]
    )
    assert "train-v2.0.json: already exists; pass --overwrite" in message
    monkeypatch.setattr(download_squad, "FILES", {"1.1": {"dev-v1.1.json": "f" * 32}})
    message = one_line_error(
        download_squad.main,
        [f"--output_dir={tmp_path / 'other'}", f"--base_url={server.url}/dataset", "--versions=1.1"],
    )
    assert "dev-v1.1.json: md5 checksum mismatch" in message
    assert not (tmp_path / "other" / "v1.1" / "dev-v1.1.json").exists()


# ---------------------------------------------------------------------------------------------
# Wikipedia


def page(page_id: int, title: str, text: str, namespace: int = 0, redirect: str | None = None):
    redirect_tag = f'<redirect title="{redirect}" />' if redirect else ""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    title = title.replace("&", "&amp;")
    return (
        f"<page><title>{title}</title><ns>{namespace}</ns><id>{page_id}</id>{redirect_tag}"
        f"<revision><id>{page_id * 100}</id><timestamp>2024-01-01T00:00:00Z</timestamp>"
        f'<text bytes="{len(text)}" xml:space="preserve">{escaped}</text></revision></page>\n'
    )


WIKI_ARTICLE = """{{Short description|Fictional town}}
{{Infobox settlement|name=Exampleville|population={{formatnum:1200}}}}
'''Exampleville''' is a small [[town]] in [[Examplia|the Republic of Examplia]].\
<ref>{{cite web|url=http://example.org|title=Ref}}</ref> It has a [[river]]s and a [http://example.org market].

== History ==
The town was founded in 1850 by [[settler]]s.<!-- citation needed -->
{| class="wikitable"
| 1850 || founded
|}
* a list that is dropped

== See also ==
* [[Other town]]

[[Category:Towns]]
[[File:Exampleville.jpg|thumb|The main square]]
"""
SECOND_ARTICLE = "'''Second''' is another article &amp; it has two sentences. This is the second."


def wiki_dump_bytes() -> bytes:
    xml = (
        '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" version="0.10" '
        'xml:lang="en">\n<siteinfo><sitename>Wikipedia</sitename><namespaces>'
        '<namespace key="0" case="first-letter" /></namespaces></siteinfo>\n'
        + page(12, "Exampleville", WIKI_ARTICLE)
        + page(13, "Examplevile", "#REDIRECT [[Exampleville]]", redirect="Exampleville")
        + page(14, "Talk:Exampleville", "Talk text that is not an article.", namespace=1)
        + page(15, "Second & more", SECOND_ARTICLE)
        + "</mediawiki>\n"
    )
    return bz2.compress(xml.encode("utf-8"))


def tiny_vocab(path: pathlib.Path) -> pathlib.Path:
    words = (
        "exampleville is a small town in the republic of examplia . it has rivers and "
        "market history was founded 1850 by settlers second another article & two "
        "sentences this"
    ).split()
    path.write_text("\n".join(SPECIAL_TOKENS + sorted(set(words))) + "\n", encoding="utf-8")
    return path


def test_wikipedia_dump_is_verified_extracted_and_built_into_pretraining_data(server, tmp_path):
    from electra_tf import pretraining_data

    dump = wiki_dump_bytes()
    folder = "/enwiki/20240101"
    server.files[f"{folder}/enwiki-20240101-pages-articles.xml.bz2"] = dump
    server.files[f"{folder}/enwiki-20240101-sha1sums.txt"] = (
        f"{'1' * 40}  enwiki-20240101-pages-articles-multistream.xml.bz2\n"
        f"{hashlib.sha1(dump).hexdigest()}  enwiki-20240101-pages-articles.xml.bz2\n"
    ).encode()
    output = tmp_path / "wikipedia"
    download_wikipedia.main(
        [f"--output_dir={output}", f"--base_url={server.url}", "--dump_date=20240101", "--timeout=5"]
    )
    text = (output / "text" / "AA" / "wiki_00").read_text(encoding="utf-8")
    assert text.startswith(
        '<doc id="12" url="https://en.wikipedia.org/wiki?curid=12" '
        'title="Exampleville">\nExampleville\n\nExampleville is a small town '
        "in the Republic of Examplia. It has a rivers and a market.\n"
        "History.\nThe town was founded in 1850 by settlers.\n</doc>\n"
    )
    assert '<doc id="15" url="https://en.wikipedia.org/wiki?curid=15" title="Second &amp; more">' in text
    assert "Talk text" not in text and "REDIRECT" not in text and "See also" not in text
    lines = list(corpus.read_lines(str(output / "text" / "AA" / "wiki_00")))
    assert lines == [
        "Exampleville is a small town in the Republic of Examplia. It has a rivers and a market.",
        "History.",
        "The town was founded in 1850 by settlers.",
        "",
        "Second is another article & it has two sentences. This is the second.",
        "",
    ]
    manifest = pretraining_data.build_pretraining_data(
        pretraining_data.BuildOptions(
            corpus_dir=str(output / "text"),
            vocab_file=str(tiny_vocab(tmp_path / "vocab.txt")),
            output_dir=str(tmp_path / "pretrain"),
            max_seq_length=16,
            num_shards=1,
        )
    )
    assert manifest["num_documents"] == 2 and manifest["num_examples"] > 0
    # Rerunning refuses to replace the text; the dump is reused, not fetched again.
    message = one_line_error(
        download_wikipedia.main, [f"--output_dir={output}", f"--base_url={server.url}", "--dump_date=20240101"]
    )
    assert message.startswith(f"{output / 'text'}: already exists; pass --overwrite")


def test_wikipedia_sha1_mismatch_and_missing_listing_are_refused(server, tmp_path):
    folder = "/enwiki/latest"
    server.files[f"{folder}/enwiki-latest-pages-articles.xml.bz2"] = wiki_dump_bytes()
    server.files[f"{folder}/enwiki-latest-sha1sums.txt"] = (
        f"{'2' * 40}  enwiki-20240101-pages-articles.xml.bz2\n"
    ).encode()
    message = one_line_error(download_wikipedia.main, [f"--output_dir={tmp_path}", f"--base_url={server.url}"])
    assert "sha1 checksum mismatch" in message
    assert not (tmp_path / "text").exists()
    message = one_line_error(
        download_wikipedia.main,
        [f"--output_dir={tmp_path / 'de'}", f"--base_url={server.url}", "--lang=de", "--attempts=1"],
    )
    assert "dewiki-latest-sha1sums.txt: HTTP 404" in message


def test_extraction_splits_files_and_does_not_depend_on_processes(tmp_path):
    dump = tmp_path / "enwiki-20240101-pages-articles.xml.bz2"
    xml = (
        '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.11/">'
        + "".join(page(i, f"Article {i}", f"Paragraph of article {i}. " * 20) for i in range(1, 40))
        + "</mediawiki>"
    )
    dump.write_bytes(bz2.compress(xml.encode()))
    one = extract_wikipedia.extract(dump, tmp_path / "one", file_bytes=2000)
    two = extract_wikipedia.extract(dump, tmp_path / "two", file_bytes=2000, processes=2)
    assert one == two and one["articles"] == 39 and one["files"] > 3
    files = sorted(path.relative_to(tmp_path / "one") for path in (tmp_path / "one").rglob("*") if path.is_file())
    assert files[0] == pathlib.Path("AA/wiki_00")
    for name in files:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    message = one_line_error(extract_wikipedia.extract, dump, tmp_path / "one")
    assert "already exists; pass --overwrite" in message


# ---------------------------------------------------------------------------------------------
# OpenWebText


def openwebtext_archive() -> bytes:
    subsets = {}
    for subset in range(2):
        pages = {
            f"{subset:04d}{page:03d}-{'ab' * 8}.txt": (
                f"Web page {page} of subset {subset}.\n\nIt has a second paragraph.\n".encode()
            )
            for page in range(3)
        }
        pages["empty-page.txt"] = b"\n"
        subsets[f"openwebtext/urlsf_subset0{subset}-{subset + 1}_data.xz"] = tar_xz_bytes(pages)
    return tar_xz_bytes(subsets)


@pytest.mark.parametrize("layout", ["jsonl", "text"])
def test_openwebtext_is_verified_and_unpacked_for_the_builder(server, tmp_path, layout):
    archive = openwebtext_archive()
    server.files["/records/3834942/files/openwebtext.tar.xz"] = archive
    server.files["/api/records/3834942"] = json.dumps(
        {"files": [{"key": "openwebtext.tar.xz", "size": len(archive), "checksum": f"md5:{md5(archive)}"}]}
    ).encode()
    output = tmp_path / "owt"
    download_openwebtext.main(
        [f"--output_dir={output}", f"--base_url={server.url}", f"--layout={layout}", "--timeout=5"]
    )
    files = sorted((output / "text").rglob("*.*"))
    documents = 0
    for path in files:
        blocks = list(corpus.read_line_blocks(str(path), corpus.ReadStats(), blanks_separate_docs=False))
        lines = [line for block in blocks for line in block]
        documents += lines.count("")
        assert lines[1] == "It has a second paragraph."
    assert documents == 6
    assert len(files) == (2 if layout == "jsonl" else 6)
    if layout == "jsonl":
        assert [path.name for path in files] == ["urlsf_subset00-1_data.jsonl", "urlsf_subset01-2_data.jsonl"]


def test_openwebtext_with_a_wrong_published_md5_is_refused(server, tmp_path):
    archive = openwebtext_archive()
    server.files["/records/3834942/files/openwebtext.tar.xz"] = archive
    server.files["/api/records/3834942"] = json.dumps(
        {
            "files": {
                "entries": {
                    "openwebtext.tar.xz": {
                        "key": "openwebtext.tar.xz",
                        "size": len(archive),
                        "checksum": "md5:" + "e" * 32,
                    }
                }
            }
        }
    ).encode()
    message = one_line_error(download_openwebtext.main, [f"--output_dir={tmp_path}", f"--base_url={server.url}"])
    assert "openwebtext.tar.xz: md5 checksum mismatch" in message
    assert not (tmp_path / "text").exists()


# ---------------------------------------------------------------------------------------------
# ELECTRA checkpoints


TINY_CONFIG = dict(
    vocab_size=110,
    embedding_size=16,
    hidden_size=32,
    num_hidden_layers=1,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=16,
    max_seq_length=8,
    generator_hidden_size=1.0,
)


def released_zip(tmp_path: pathlib.Path) -> bytes:
    """A zip laid out like electra_small.zip, holding a TF1 name-based checkpoint of a tiny
    model (the reference's variable names, plus a global_step it carries)."""
    import numpy as np
    import tensorflow as tf

    from electra_tf import checkpoint_conversion
    from electra_tf.config import ElectraConfig

    config = ElectraConfig(**TINY_CONFIG)
    rng = np.random.default_rng(0)
    tensors = {
        variable.official: rng.normal(0, 0.02, variable.shape).astype(np.float32)
        for variable in checkpoint_conversion.variable_table(config)
    }
    tensors["global_step"] = np.array(1000, dtype=np.int64)
    prefix = tmp_path / "release" / "electra_small"
    prefix.parent.mkdir()
    names = sorted(tensors)
    tf.raw_ops.SaveV2(
        prefix=str(prefix),
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.constant(tensors[name]) for name in names],
    )
    vocab = "\n".join(SPECIAL_TOKENS + [f"word{i}" for i in range(105)]) + "\n"
    members = {f"electra_small/{path.name}": path.read_bytes() for path in prefix.parent.iterdir()}
    members["electra_small/vocab.txt"] = vocab.encode()
    return zip_bytes(members)


def test_electra_checkpoint_is_downloaded_unpacked_and_converted(server, tmp_path):
    import base64

    data = released_zip(tmp_path)
    server.files["/electra-data/electra_small.zip"] = data
    server.headers["/electra-data/electra_small.zip"] = {
        "x-goog-hash": "md5=" + base64.b64encode(hashlib.md5(data).digest()).decode()
    }
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY_CONFIG))
    output = tmp_path / "checkpoints"
    download_electra.main(
        [
            f"--output_dir={output}",
            f"--base_url={server.url}/electra-data",
            "--models=small",
            f"--config={config}",
            "--timeout=5",
        ]
    )
    release = output / "electra_small"
    assert sorted(path.name for path in release.iterdir()) == [
        "electra_small.data-00000-of-00001",
        "electra_small.index",
        "vocab.txt",
    ]
    converted = output / "electra_small_tf"
    assert {"config.json", "backbone.weights.h5", "discriminator.weights.h5", "generator.weights.h5", "vocab.txt"} <= {
        path.name for path in converted.iterdir()
    }
    assert json.loads((converted / "config.json").read_text())["hidden_size"] == 32
    message = one_line_error(download_electra.main, [f"--output_dir={output}", f"--base_url={server.url}/electra-data"])
    assert message.startswith(f"{release}: already exists; pass --overwrite")
    # A conversion that does not fit is one line naming the release, and leaves no output.
    message = one_line_error(
        download_electra.main,
        [
            f"--output_dir={tmp_path / 'wrong'}",
            f"--base_url={server.url}/electra-data",
            "--models=small",
            f"--config={config}",
            '--hparams={"hidden_size": 64}',
        ],
    )
    assert message.startswith(f"converting {tmp_path / 'wrong' / 'electra_small'} failed:")
    assert not (tmp_path / "wrong" / "electra_small_tf").exists()
