"""Plumber's own example APIs answer the same through the gateway as under `pr_run(plumb(dir))`.

Every app in tests/data/plumber_conformance.json runs twice at once: directly, as an R user
runs it (`library(plumber); pr_run(plumb(dir = DIR), port = P)` in a background R process,
from the app's folder), and as a model of one real stack, reached at /plumber/<model>/...
Each request goes to both in turn; status, Content-Type, Content-Disposition, Set-Cookie,
Allow and the body must be equal byte for byte (after the data's masks).
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from gateway.paths import REPO_ROOT
from gateway.register import register_artefact
from gateway.runtime.plan import free_ports
from tests.integration.conftest import Stack, start_stack

DATA = REPO_ROOT / "tests" / "data"
CASES: dict[str, dict[str, Any]] = json.loads((DATA / "plumber_conformance.json").read_text(encoding="utf-8"))["apps"]
EXAMPLES = Path(subprocess.run(["Rscript", "-e", 'cat(system.file("plumber", package = "plumber"))'],
                               capture_output=True, text=True, check=True).stdout)
# Shipped examples that are not in the suite, and why (they cannot run offline here).
EXCLUDED = {
    "03-github": "its /update route runs remotes::install_github (network, GitHub) and needs a webhook key "
                 "file and the remotes package; `gateway register` refuses it for remotes",
    "14-future": "needs coro, which Debian does not package (and future); `gateway register` refuses it",
}
# Registered into the store (a directory, an entrypoint.R); the others are `script = ...` in the config.
REGISTERED = {"ex12": "", "ex15": "entrypoint.R", "own_errors": ""}
# What legitimately differs between two runs of the same app: blanked in both before comparing.
MASKS = {
    "time": (r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)?", "<time>"),
    "date": (r"[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} \d{4}", "<date>"),
    "number": (r"-?\d+(\.\d+)?(e[-+]?\d+)?", "<n>"),
    "pdf_dates": (r"/(CreationDate|ModDate) \(D:[^)]*\)", r"/\1 ()"),
    "session_cookie": (r"(cookieName|app_session)=[^;,\s]*", r"\1=<sealed>"),
}
COMPARED_HEADERS = ("Content-Type", "Content-Disposition", "Set-Cookie", "Allow")
DIRECT_RUNNERS = {
    "plumb": "library(plumber); a <- commandArgs(TRUE); pr_run(plumb(dir = a[1]), port = as.integer(a[2]))",
    "source": "library(plumber); a <- commandArgs(TRUE); pr_run(source(a[1])$value, port = as.integer(a[2]))",
}
START_BUDGET_S = 120.0


def test_every_shipped_example_is_in_the_suite_or_excluded_with_a_reason() -> None:
    shipped = {p.name for p in EXAMPLES.iterdir() if p.is_dir()}
    covered = {case["example"] for case in CASES.values() if "example" in case}
    assert shipped == covered | set(EXCLUDED)
    assert not covered & set(EXCLUDED)


def app_dir(case: dict[str, Any]) -> Path:
    return EXAMPLES / case["example"] if "example" in case else DATA / "plumber_apps" / case["app"]


@dataclass
class Targets:
    direct: dict[str, str]  # app → base URL of its own pr_run
    gw: Stack


@pytest.fixture(scope="module")
def targets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Targets]:
    directory = tmp_path_factory.mktemp("conformance")
    ports = dict(zip(CASES, free_ports(len(CASES)), strict=True))
    processes: dict[str, subprocess.Popen[bytes]] = {}
    logs = directory / "direct"
    logs.mkdir()
    try:
        for name, case in CASES.items():
            folder = app_dir(case)
            entry = str(folder / case["file"]) if "file" in case else str(folder)
            with (logs / f"{name}.log").open("wb") as log:
                processes[name] = subprocess.Popen(
                    ["Rscript", "-e", DIRECT_RUNNERS[case.get("run", "plumb")], entry, str(ports[name])],
                    cwd=folder, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                )
        store = directory / "store"
        models: dict[str, dict[str, Any]] = {}
        for name, case in CASES.items():
            folder = app_dir(case)
            models[name] = {"backend": "plumber", "workers": 1, "timeout_s": 20}
            if name in REGISTERED:
                register_artefact(store, name, folder / REGISTERED[name], None)
            else:
                models[name]["script"] = str(folder / case.get("file", ""))
        with start_stack(directory, models, store=store, wait_s=START_BUDGET_S) as gw:
            direct = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
            for name, url in direct.items():
                wait_listening(url, processes[name], logs / f"{name}.log")
            yield Targets(direct, gw)
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def wait_listening(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_BUDGET_S
    while time.monotonic() < deadline:
        try:
            requests.get(url + "/__nothing__", timeout=2)
            return
        except requests.ConnectionError:
            assert process.poll() is None, f"{url} exited: {log.read_text(errors='replace')}"
            time.sleep(0.1)
    raise AssertionError(f"{url} never listened: {log.read_text(errors='replace')}")


def send(http: requests.Session, base: str, request: dict[str, Any],
         headers: dict[str, str] | None = None) -> requests.Response:
    headers = dict(headers or {})
    if request["method"] == "HEAD":
        # httpuv writes a body after its HEAD answers; on a kept-alive connection the next
        # reply would start with those bytes.
        headers["Connection"] = "close"
    body: bytes | None = None
    if "json" in request:
        body, headers["Content-Type"] = json.dumps(request["json"]).encode(), "application/json"
    elif "form" in request:
        body, headers["Content-Type"] = request["form"].encode(), "application/x-www-form-urlencoded"
    elif "body_base64" in request:
        body, headers["Content-Type"] = base64.b64decode(request["body_base64"]), request["content_type"]
    return http.request(request["method"], base + request["path"], data=body, headers=headers,
                        allow_redirects=False, timeout=60)


def observed(reply: requests.Response, masks: list[str]) -> dict[str, Any]:
    """What must match: status, the compared headers (every value of each), the body."""
    def blank(text: str) -> str:
        for name in masks:
            pattern, replacement = MASKS[name]
            text = re.sub(pattern, replacement, text)
        return text

    body = reply.content
    for name in masks:
        pattern, replacement = MASKS[name]
        body = re.sub(pattern.encode(), replacement.encode(), body)
    raw = reply.raw.headers
    return {"status": reply.status_code, "body": body,
            **{h: [blank(v) for v in raw.getlist(h)] for h in COMPARED_HEADERS}}


@pytest.mark.parametrize("app", list(CASES))
def test_app_answers_as_under_pr_run(targets: Targets, app: str) -> None:
    case = CASES[app]
    with requests.Session() as direct, requests.Session() as gateway:
        direct.trust_env = gateway.trust_env = False
        for request in case["requests"]:
            masks = request.get("mask", [])
            want = observed(send(direct, targets.direct[app], request), masks)
            got = observed(send(gateway, f"{targets.gw.url}/plumber/{app}", request), masks)
            assert got == want, f"{app}: {request['method']} {request['path']}"


def test_r_error_message_goes_to_the_worker_log_with_the_request_id_not_to_the_client(targets: Targets) -> None:
    request_id = "conformance-sync-bad-1"
    reply = targets.gw.get("/plumber/ex13/sync-bad", headers={"X-Request-ID": request_id})
    assert (reply.status_code, reply.content) == (500, b'{"error":"500 - Internal server error"}')
    deadline = time.monotonic() + 10
    while True:
        lines = [line for log in (targets.gw.run_dir / "logs").glob("plumber-ex13-*.log")
                 for line in log.read_text(errors="replace").splitlines() if request_id in line]
        # R's own error line at once, the JSON request line with its batch (server.log_flush_ms)
        if {line.startswith("{") for line in lines if "sync-bad - expected error here" in line} == {True, False} \
                or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert any("sync-bad - expected error here" in line for line in lines), lines
    logged = [json.loads(line) for line in lines if line.startswith("{")]
    assert [(e["status"], e["error"]) for e in logged] == [(500, "sync-bad - expected error here")]


def test_a_client_cannot_ask_a_script_for_rs_error_messages(targets: Targets) -> None:
    """X-Gateway-Predict is the gateway's own predict call; the pass-through drops a client's."""
    reply = targets.gw.get("/plumber/pr_built/boom", headers={"X-Gateway-Predict": "1"})
    assert (reply.status_code, reply.content) == (500, b'{"error":"500 - Internal server error"}')
    assert b"hunter2" not in reply.content


def test_one_clients_session_cookie_never_reaches_another(targets: Targets) -> None:
    """The gateway forwards every client's requests over shared connections: a cookie the
    script set for one client must not come back on another's request."""
    with requests.Session() as ann, requests.Session() as bob:
        ann.trust_env = bob.trust_env = False
        url = f"{targets.gw.url}/plumber/pr_built/session"
        assert [ann.get(url, timeout=30).json() for _ in range(3)] == [{"visits": [n]} for n in (1, 2, 3)]
        assert bob.get(url, timeout=30).json() == {"visits": [1]}
