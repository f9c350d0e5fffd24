"""What one request, one run directory or one flag can take from `makemore serve`: each is bounded,
and refused in one line past its bound (docs/reliability.md, "Serving")."""

import asyncio
import json
import os
import shutil
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi import HTTPException
from fastapi.testclient import TestClient

from makemore import runs as commands
from makemore import serve
from makemore.cli import main
from makemore.sample import Sampling
from makemore.serve import MAX_BODY, load_runs, make_app

from conftest import get_json, run_cli, serving, wait_for


@pytest.fixture(scope="module")
def loaded(served_runs):
    runs, _ = load_runs([str(served_runs)])
    return runs


@pytest.fixture(scope="module")
def client(loaded):
    return TestClient(make_app(loaded))


@pytest.fixture
def log_run(served_runs, tmp_path):
    """A copy of the served mlp run, its metrics.jsonl free to rewrite: (client, path of the log)."""
    shutil.copytree(served_runs / "mlp", tmp_path / "mlp")
    runs, _ = load_runs([str(tmp_path / "mlp")])
    return TestClient(make_app(runs)), tmp_path / "mlp" / "metrics.jsonl"


def one_line_error(response, status: int, message: str) -> str:
    error = response.json()["error"]
    assert response.status_code == status and message in error and "\n" not in error, (response.status_code, error)
    assert "detail" not in response.json()
    return error


# --- request bodies ----------------------------------------------------------------------------------
def test_a_chunked_body_over_the_limit_is_refused(client):
    """No Content-Length (Transfer-Encoding: chunked): the bytes are counted as they arrive."""
    chunks = (b'{"run": "mlp", "items": ["' + b"a" * (64 << 10) for _ in range(40))  # 2.6 MB, no length
    response = client.post("/api/score", content=chunks, headers={"content-type": "application/json"})
    one_line_error(response, 413, "1,048,576 bytes")
    assert client.get("/api/runs").status_code == 200  # and the server goes on


def test_the_rest_of_a_refused_upload_is_never_read(loaded):
    """At the ASGI level, with an endless upload: the app stops asking for bytes just past the limit."""
    app, pulled, sent = make_app(loaded), [0], []

    async def receive():
        pulled[0] += 1 << 16
        if pulled[0] > 64 << 20:  # a server that buffers the upload stops here, having failed
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.request", "body": b"a" * (1 << 16), "more_body": True}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/score",
        "raw_path": b"/api/score",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 413 and (b"connection", b"close") in sent[0]["headers"]
    assert pulled[0] <= MAX_BODY + (1 << 16)


# --- the run's log -----------------------------------------------------------------------------------
@pytest.mark.parametrize("target", ["elsewhere", "/dev/zero"])
def test_a_log_that_is_a_link_is_not_followed(log_run, tmp_path, target):
    client, log = log_run
    if target == "elsewhere":  # a file the server should not read through a run
        target = tmp_path / "secret.jsonl"
        target.write_text('{"step": 1, "loss": 1.0}\n')
    log.unlink()
    log.symlink_to(target)
    one_line_error(client.get("/api/runs/mlp/metrics"), 400, "metrics.jsonl is a symbolic link")


def test_a_log_that_is_a_fifo_does_not_hang_the_server(log_run):
    client, log = log_run
    log.unlink()
    os.mkfifo(log)
    answers = []
    asking = threading.Thread(target=lambda: answers.append(client.get("/api/runs/mlp/metrics")), daemon=True)
    asking.start()
    asking.join(timeout=30)
    if asking.is_alive():  # blocked reading the FIFO: give it an end, so the thread finishes
        os.close(os.open(log, os.O_WRONLY | os.O_NONBLOCK))
        asking.join()
        pytest.fail("the server blocked reading a FIFO")
    one_line_error(answers[0], 400, "metrics.jsonl is not a regular file")


def test_a_log_over_the_limit_is_not_read(log_run):
    client, log = log_run
    with open(log, "r+b") as f:  # sparse: nothing of it is on the disk, or read
        f.truncate(serve.MAX_LOG_BYTES + 1)
    one_line_error(client.get("/api/runs/mlp/metrics"), 400, "the server reads logs of at most 268,435,456")


def test_a_log_line_over_the_limit_is_damage(log_run):
    client, log = log_run
    with open(log, "ab") as f:
        f.write(b'{"step": 300, "loss": 1.0, "x": "' + b"a" * serve.MAX_LOG_LINE + b'"}\n{"step": 400}\n')
    one_line_error(client.get("/api/runs/mlp/metrics"), 400, "metrics.jsonl line 6 is over 65,536 bytes")


def write_log(path: Path, steps: range) -> None:
    with open(path, "w") as f:
        for step in steps:
            f.write(json.dumps({"step": step, "loss": 3.0 - step / 1e6, "lr": 0.01}) + "\n")
            if step % 10 == 0:
                f.write(json.dumps({"step": step, "dev": 3.0 - step / 1e6}) + "\n")


def test_a_long_log_is_thinned_and_read_only_where_it_grew(log_run, monkeypatch):
    client, log = log_run
    monkeypatch.setattr(serve, "MAX_CURVE_ROWS", 50)
    write_log(log, range(1, 2001))  # 2,000 train rows, 200 dev rows
    read = []
    pread = os.pread
    monkeypatch.setattr(os, "pread", lambda fd, n, at: read.append(n) or pread(fd, n, at))
    rows = client.get("/api/runs/mlp/metrics").json()
    train, dev = [r["step"] for r in rows if "loss" in r], [r["step"] for r in rows if "dev" in r]
    assert 25 < len(train) <= 51 and 25 < len(dev) <= 51  # at most 50 of each, and the last
    assert train[0] == 1 and train[-1] == 2000 and dev[0] == 10 and dev[-1] == 2000
    assert [b - a for a, b in zip(train, train[1:-1])] == [train[1] - train[0]] * (len(train) - 2)  # evenly
    assert [r["step"] for r in rows] == sorted(r["step"] for r in rows)
    assert sum(read) == log.stat().st_size

    read.clear()
    assert client.get("/api/runs/mlp/metrics").json() == rows and read == []  # unchanged: not read again
    grown = json.dumps({"step": 2001, "loss": 0.5, "lr": 0.01}) + "\n"
    with open(log, "a") as f:
        f.write(grown)
    rows = client.get("/api/runs/mlp/metrics").json()
    assert rows[-1] == {"step": 2001, "loss": 0.5, "lr": 0.01} and sum(read) == len(grown)


def test_a_torn_last_line_waits_for_its_end_and_damage_is_one_line(log_run):
    client, log = log_run
    before = client.get("/api/runs/mlp/metrics").json()
    with open(log, "a") as f:
        f.write('{"step": 300, "lo')  # a crash mid-append, or an append under way
    assert client.get("/api/runs/mlp/metrics").json() == before
    with open(log, "a") as f:
        f.write('ss": 1.5}\n')
    assert client.get("/api/runs/mlp/metrics").json() == [*before, {"step": 300, "loss": 1.5}]
    with open(log, "a") as f:
        f.write('not json\n{"step": 400, "loss": 1.0}\n')
    one_line_error(client.get("/api/runs/mlp/metrics"), 400, "metrics.jsonl line 7 is not a row of the log")
    log.write_text('{"step": 1, "loss": 3.0}\n')  # replaced (a resumed run cuts its log): read anew
    assert client.get("/api/runs/mlp/metrics").json() == [{"step": 1, "loss": 3.0}]


def test_the_log_answer_is_the_stores_for_a_short_log(client, loaded):
    assert client.get("/api/runs/mlp/metrics").json() == loaded["mlp"].store.metrics()


# --- views -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def wide_vocabulary(tmp_path_factory):
    """A counted bigram over 300 characters: its matrix would be 301 x 301 cells."""
    root = tmp_path_factory.mktemp("wide")
    chars = [chr(0x100 + i) for i in range(300)]
    items = ["".join(chars[(7 * i + k) % 300] for k in range(3)) for i in range(3000)]
    (root / "items.txt").write_text("\n".join(items) + "\n", encoding="utf-8")
    assert main(["train", "--type", "bigram", "-i", str(root / "items.txt"), "-o", str(root / "wide"), "-q"]) == 0
    return root / "wide"


def test_a_bigram_matrix_too_large_to_draw_is_refused(wide_vocabulary):
    runs, _ = load_runs([str(wide_vocabulary)])
    response = TestClient(make_app(runs)).get("/api/runs/wide/bigram")
    one_line_error(response, 400, "the bigram matrix of 301 characters (90,601 cells) is too large to show")


def test_attention_maps_are_bounded(client, monkeypatch):
    monkeypatch.setattr(serve, "MAX_ATTENTION_WEIGHTS", 4 * 10 * 10)  # 1 layer x 4 heads: 9 characters
    assert client.post("/api/attention", json={"run": "transformer", "text": "emmaemmae"}).status_code == 200
    response = client.post("/api/attention", json={"run": "transformer", "text": "emmaemmaem"})
    assert one_line_error(response, 400, "show at most 9 characters") and response.json()["field"] == "text"


def test_samples_are_bounded_by_the_longest_item_the_model_can_draw(client, monkeypatch):
    monkeypatch.setattr(serve, "MAX_SAMPLE_CHARS", 1000)  # the mlp's items can be 30 characters long
    assert client.post("/api/sample", json={"run": "mlp", "n": 33}).status_code == 200
    response = client.post("/api/sample", json={"run": "mlp", "n": 34})
    one_line_error(response, 400, "n: this model's items can be 30 characters long: at most 33 per request")
    assert response.json()["field"] == "n"


# --- model time --------------------------------------------------------------------------------------
def test_new_only_stops_at_its_time_budget_with_a_note(client, monkeypatch):
    """A temperature that draws one item over and over (not new): no 100 rounds of redrawing."""
    monkeypatch.setattr(serve, "NEW_ONLY_SECONDS", 0)
    body = {"run": "mlp", "n": 300, "temperature": 1e-9, "new_only": True}
    answer = client.post("/api/sample", json=body).json()
    assert len(answer["items"]) < 300 and "after 1 rounds of drawing 300" in answer["note"]


def test_new_only_within_its_budget_is_what_sample_draws(client, loaded):
    run = loaded["mlp"]
    expected = commands.draw(run.best, run.data, 40, 5, Sampling(prefix="em"), True)
    answer = client.post("/api/sample", json={"run": "mlp", "n": 40, "seed": 5, "prefix": "em", "new_only": True})
    assert [(i["item"], i["split"]) for i in answer.json()["items"]] == expected and "note" not in answer.json()


def test_waiting_model_requests_do_not_hold_up_the_rest(loaded, monkeypatch):
    """With the model busy and 48 requests waiting for it (more than the 40 threads of the server's
    pool), the run list, logs, page and its files answer at once; the next model request is refused
    (503) rather than queued without end."""
    monkeypatch.setattr(serve.MODEL, "limit", 48)
    body = {"run": "mlp", "n": 5}
    with TestClient(make_app(loaded)) as client, ThreadPoolExecutor(52) as pool:
        serve.COMPUTE.acquire()  # the model is busy
        try:
            waiting = [pool.submit(client.post, "/api/sample", json=body) for _ in range(48)]
            wait_for(lambda: serve.MODEL.waiting == 48, timeout=30)
            for path in ("/api/runs", "/api/runs/mlp/metrics", "/", "/docs", "/static/app.js", "/openapi.json"):
                assert pool.submit(client.get, path).result(timeout=30).status_code == 200, path
            one_line_error(client.post("/api/sample", json=body), 503, "the server is busy")
        finally:
            serve.COMPUTE.release()
        assert all(w.result(timeout=60).status_code == 200 for w in waiting)
    wait_for(lambda: serve.MODEL.waiting == 0, timeout=30)


# --- hosts, errors, the command line ------------------------------------------------------------------
def test_only_the_hosts_the_server_serves_are_answered(loaded):
    client = TestClient(make_app(loaded, "127.0.0.1", 8765), base_url="http://127.0.0.1:8765")
    for host in ("127.0.0.1:8765", "localhost:8765", "[::1]:8765", "LOCALHOST", "localhost.:8765"):
        assert client.get("/api/runs", headers={"host": host}).status_code == 200, host
    for host in ("evil.example:8765", "evil.example", "127.0.0.1:8766", "127.0.0.1.evil.example:8765", ""):
        response = client.get("/api/runs", headers={"host": host})
        one_line_error(response, 400, "this server answers to 127.0.0.1, ::1, localhost on port 8765")
    everywhere = TestClient(make_app(loaded, "0.0.0.0", 8765), base_url="http://box.example:8765")
    assert everywhere.get("/api/runs").status_code == 200  # bound to every address: open, as serve warns


@pytest.mark.parametrize(
    "method, path, body, status, message",
    [
        ("post", "/api/sample", b'{"run": "mlp", "n": ', 422, "body: not valid JSON (Expecting value at byte 20)"),
        ("post", "/api/sample", b"[1, 2]", 422, "body: Input should be a valid dictionary"),
        ("get", "/api/nothing", None, 404, "nothing at /api/nothing; /docs lists the API"),
        ("get", "/static/nothing.js", None, 404, "nothing at /static/nothing.js"),
        ("get", "/api/sample", None, 405, "GET is not allowed at /api/sample; it takes POST"),
        ("delete", "/api/runs", None, 405, "DELETE is not allowed at /api/runs; it takes GET"),
    ],
)
def test_every_error_has_the_documented_shape(client, method, path, body, status, message):
    headers = {"content-type": "application/json"}
    response = getattr(client, method)(path, **({"content": body, "headers": headers} if body else {}))
    one_line_error(response, status, message)
    if status == 422:
        assert response.json()["field"] == "body"


def test_a_port_out_of_range_is_one_line(capsys, served_runs):
    code, _, err = run_cli(capsys, "serve", served_runs / "mlp", "--port", "70000")
    assert code == 2 and "--port: must be a port number (1 to 65535), got 70000" in err and "Traceback" not in err


@pytest.mark.slow
def test_a_port_in_use_is_one_line_and_nothing_says_serving(capsys, served_runs, tmp_path):
    """...and the runs skipped on the way, their names forged with escape sequences, print escaped."""
    shutil.copytree(served_runs / "mlp", tmp_path / "runs" / "mlp")
    forged = tmp_path / "runs" / "bad\x1b[2J\x1b]0;owned\x07"
    shutil.copytree(served_runs / "mlp", forged)
    (forged / "model.safetensors").write_bytes(b"not a checkpoint")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = run_cli(capsys, "serve", tmp_path / "runs", "--port", port)
    assert code == 1 and f"cannot serve at 127.0.0.1:{port}: Address already in use" in err
    assert "serving" not in err and "Traceback" not in err
    assert "skipped" in err and "bad\\x1b[2J\\x1b]0;owned\\x07" in err and "\x1b" not in err and "\x07" not in err


def test_a_run_named_with_escape_sequences_is_refused_escaped(served_runs, tmp_path):
    forged = tmp_path / "bad\x1b[31m"
    shutil.copytree(served_runs / "mlp", forged)
    (forged / "model.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(Exception, match=r"cannot serve .*bad\\x1b\[31m") as refused:
        load_runs([str(forged)])
    assert "\x1b" not in str(refused.value)


@pytest.mark.slow
def test_the_real_server_refuses_an_endless_chunked_upload_and_foreign_hosts(served_runs):
    """Over HTTP, under uvicorn: a chunked upload is cut at 1 MB (413, connection closed) and the
    server's memory does not grow with it; a foreign Host: gets 400."""
    with serving(served_runs / "mlp") as (url, server):
        assert get_json(url + "/api/runs") is not None
        peak = lambda: int(next(li for li in open(f"/proc/{server.pid}/status") if li.startswith("VmHWM")).split()[1])  # noqa: E731
        before, port = peak(), int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(b"POST /api/score HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % port)
            s.sendall(b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
            chunk, sent = b"%x\r\n%s\r\n" % (1 << 16, b"a" * (1 << 16)), 0
            try:
                while sent < 64 << 20:  # 64 MB, unless the server closes first
                    s.sendall(chunk)
                    sent += 1 << 16
                s.sendall(b"0\r\n\r\n")
            except OSError:  # closed by the server, as it should be
                pass
            answer = b""
            try:
                while data := s.recv(1 << 16):
                    answer += data
            except ConnectionResetError:
                pass
        assert answer.startswith(b"HTTP/1.1 413") and b"1,048,576 bytes" in answer and sent < 64 << 20
        assert peak() - before < 32 << 10  # kB: nothing of the upload was kept
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(b"GET /api/runs HTTP/1.1\r\nHost: rebound.example:%d\r\nConnection: close\r\n\r\n" % port)
            answer = b"".join(iter(lambda: s.recv(1 << 16), b""))
        assert answer.startswith(b"HTTP/1.1 400") and b"this server answers to" in answer
    assert "Traceback" not in server.stderr_text


def test_a_queued_request_whose_asker_left_is_never_run():
    """A slider drag supersedes its requests: the page cancels them, and those still waiting for the
    model are dropped, not computed."""
    queue, started, release, ran = serve.ModelQueue(), threading.Event(), threading.Event(), []

    async def left():
        return True

    async def drag():
        busy = asyncio.ensure_future(queue.run(lambda: (started.set(), release.wait())))
        await asyncio.get_running_loop().run_in_executor(None, started.wait)
        with pytest.raises(HTTPException) as refused:
            await queue.run(ran.append, "superseded", gone=left)
        release.set()
        await busy
        return refused.value.status_code

    assert asyncio.run(drag()) == 499 and ran == [] and queue.waiting == 0
