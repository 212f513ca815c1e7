"""Metrics, request ids and logs through a real stack: Python and R models, 2 Gunicorn workers.

One stack for the module (R pools cost seconds to start). Metric checks compare a scrape
before and after, so the tests do not depend on each other's traffic.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import uuid
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from gateway.demo import build_iris
from gateway.paths import REPO_ROOT
from tests.integration.conftest import Stack, start_stack, wait_for
from tests.integration.r_models import build_r_store

MODELS = {
    "iris": {"backend": "python"},
    "mtcars": {"backend": "plumber", "workers": 2, "timeout_s": 20},
    "fragile": {"backend": "plumber", "workers": 1, "timeout_s": 20},
    "cars": {"backend": "plumber", "workers": 1},
}
IRIS_ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
MTCARS_ROWS = [{"wt": 2.62, "hp": 110, "cyl": 6, "am": "manual"}, {"wt": 3.2, "hp": 150, "cyl": 8, "am": "auto"}]
CHROMIUM = "/usr/bin/chromium"  # Debian's `chromium` (Makefile APT_PACKAGES)
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    store = build_r_store(tmp_path_factory.mktemp("obs") / "store")
    build_iris(store)
    with start_stack(tmp_path_factory.mktemp("obs-stack"), MODELS, {"workers": 2, "threads": 4},
                     store=store) as running:
        yield running


def scrape(gw: Stack) -> Samples:
    reply = gw.get("/metrics")
    assert reply.status_code == 200, reply.text
    assert reply.headers["Content-Type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(reply.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum over every sample of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def json_lines(path: Path) -> list[dict[str, Any]]:
    lines = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines




def logged(gw: Stack, pattern: str, request_id: str) -> list[dict[str, Any]]:
    return [entry for path in sorted((gw.run_dir / "logs").glob(pattern)) for entry in json_lines(path)
            if entry.get("request_id") == request_id]


def test_one_request_id_is_in_the_gateway_nginx_and_r_worker_logs(gw: Stack) -> None:
    request_id = f"trace-{uuid.uuid4().hex[:12]}"
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    reply = gw.post("/models/mtcars/predict", json=MTCARS_ROWS,
                    headers={"X-Request-ID": request_id, "traceparent": traceparent})
    assert reply.status_code == 200
    assert reply.headers["X-Request-ID"] == request_id == reply.json()["request_id"]

    (app_line,) = wait_for(lambda: logged(gw, "gunicorn.log", request_id))
    assert {k: app_line[k] for k in ("model", "version", "backend", "protocol", "status", "rows")} == {
        "model": "mtcars", "version": "1", "backend": "plumber", "protocol": "native", "status": 200, "rows": 2}
    assert app_line["duration_ms"] > 0
    assert app_line["traceparent"] == traceparent

    nginx_lines = wait_for(lambda: len(logged(gw, "nginx-access.log", request_id)) == 2
                           and logged(gw, "nginx-access.log", request_id))
    assert nginx_lines, "expected the public and the internal NGINX line"
    listeners = {(line["server_addr"], line["server_port"]) for line in nginx_lines}
    # The internal NGINX listens on a Unix socket: its address is `unix:<path>`, its port "".
    assert listeners == {(gw.plan.public.host, str(gw.plan.public.port)), (gw.plan.internal.address, "")}
    internal = next(line for line in nginx_lines if line["server_addr"] == gw.plan.internal.address)
    assert internal["uri"] == "/r/mtcars/predict"
    assert internal["traceparent"] == traceparent  # the app passed it on unchanged

    (r_line,) = wait_for(lambda: logged(gw, "plumber-mtcars-*.log", request_id))
    assert r_line["source"] == "r_worker"
    assert (r_line["model"], r_line["rows"], r_line["status"]) == ("mtcars", 2, 200)
    assert r_line["pid"] == _pid_listening(gw, internal["upstream_addr"])


def _pid_listening(gw: Stack, address: str) -> int:
    pool = gw.plan.pools["mtcars"]
    index = [w.address for w in pool.workers].index(address) + 1
    return gw.pids()[f"plumber-mtcars-{index}"]


def test_an_r_error_is_logged_with_rs_message_under_the_request_id(gw: Stack) -> None:
    request_id = f"fail-{uuid.uuid4().hex[:12]}"
    reply = gw.post("/models/fragile/predict", json=[{"x": 1}, {"x": -3}], headers={"X-Request-ID": request_id})
    assert reply.status_code == 422
    (r_line,) = wait_for(lambda: logged(gw, "plumber-fragile-*.log", request_id))
    assert r_line["status"] == 422
    assert r_line["rows"] == 2
    assert "x must be non-negative" in r_line["error"]
    (app_line,) = wait_for(lambda: logged(gw, "gunicorn.log", request_id))
    assert app_line["status"] == 422
    assert app_line["rows"] is None
    assert "x must be non-negative" in app_line["error"]


def test_an_insane_request_id_is_replaced_and_never_logged(gw: Stack) -> None:
    bad = "evil:id\u00e9"
    reply = gw.post("/models/iris/predict", json=[IRIS_ROW], headers={"X-Request-ID": bad.encode()})
    assert reply.status_code == 200
    replaced = reply.headers["X-Request-ID"]
    assert replaced != bad and reply.json()["request_id"] == replaced
    assert wait_for(lambda: logged(gw, "gunicorn.log", replaced))
    for path in (gw.run_dir / "logs").glob("*.log"):
        assert "evil:id" not in path.read_text(encoding="utf-8", errors="replace"), path


def test_request_counts_add_up_across_gunicorn_workers_dead_or_alive(gw: Stack) -> None:
    before = scrape(gw)
    first_workers = gw.gunicorn_workers()
    assert len(first_workers) == 2

    def traffic() -> None:
        for _ in range(5):
            assert gw.post("/models/iris/predict", json=[IRIS_ROW, IRIS_ROW]).status_code == 200
            assert gw.post("/models/mtcars/predict", json=MTCARS_ROWS).status_code == 200
        assert gw.post("/models/mtcars/predict", json=[{"wt": 1.0}]).status_code == 422
        assert gw.get("/plumber/cars/hello/you").status_code == 200

    traffic()
    # Every worker that served the first half dies; their counts must still be in the scrape.
    for pid in first_workers:
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: len(gw.gunicorn_workers() - first_workers) == 2
             and gw.get("/readyz").status_code == 200, budget_s=30)
    traffic()
    assert gw.gunicorn_workers().isdisjoint(first_workers)

    after = scrape(gw)

    def delta(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert delta("gateway_requests_total", model="iris", version="1", backend="python",
                 protocol="native", status="200") == 10
    assert delta("gateway_requests_total", model="mtcars", backend="plumber", protocol="native", status="200") == 10
    assert delta("gateway_requests_total", model="mtcars", protocol="native", status="422") == 2
    assert delta("gateway_requests_total", model="cars", protocol="plumber", status="200") == 2
    assert delta("gateway_rows_total", model="iris") == 20
    assert delta("gateway_rows_total", model="mtcars") == 20
    assert delta("gateway_request_duration_seconds_count", model="mtcars", backend="plumber") == 12
    # The 422 for a missing column never reaches R: 10 backend calls, not 12.
    assert delta("gateway_backend_duration_seconds_count", model="mtcars", backend="plumber") == 10
    assert delta("gateway_backend_duration_seconds_count", model="cars", backend="plumber") == 2
    # Histogram buckets are cumulative: the +Inf bucket holds every observation.
    assert delta("gateway_request_duration_seconds_bucket", model="iris", le="+Inf") == 10


def test_model_info_and_pool_workers_describe_the_stack(gw: Stack) -> None:
    samples = scrape(gw)
    sha = gw.get("/models/mtcars").json()["sha256"]
    assert value(samples, "gateway_model_info", model="mtcars", version="1", backend="plumber",
                 language="r", sha256=sha) == 1
    iris = gw.get("/models/iris").json()
    assert value(samples, "gateway_model_info", model="iris", version=iris["version"], backend="python",
                 language="python", sha256=iris["sha256"]) == 1
    assert value(samples, "gateway_pool_workers", model="mtcars", state="total") == 2
    assert value(samples, "gateway_pool_workers", model="mtcars", state="live") == 2
    assert value(samples, "gateway_pool_workers", model="fragile", state="total") == 1
    assert total(samples, "gateway_pool_workers", model="iris") == 0  # not a pool


def test_a_killed_r_worker_counts_as_one_restart(gw: Stack) -> None:
    before = value(scrape(gw), "gateway_worker_restarts_total", model="mtcars")
    victim = gw.pids()["plumber-mtcars-1"]
    os.kill(victim, signal.SIGKILL)
    restarted = wait_for(lambda: value(scrape(gw), "gateway_worker_restarts_total", model="mtcars") == before + 1)
    assert restarted, "restart not counted within 10 s"
    assert wait_for(lambda: value(scrape(gw), "gateway_pool_workers", model="mtcars", state="live") == 2)
    assert gw.pids()["plumber-mtcars-1"] != victim
    assert value(scrape(gw), "gateway_worker_restarts_total", model="fragile") == 0


def test_a_plumber_scripts_own_route_logs_the_gateways_request_id(gw: Stack) -> None:
    request_id = f"script-{uuid.uuid4().hex[:12]}"
    reply = gw.get("/plumber/cars/hello/you", headers={"X-Request-ID": request_id})
    assert reply.status_code == 200
    (r_line,) = wait_for(lambda: logged(gw, "plumber-cars-*.log", request_id))
    assert (r_line["model"], r_line["status"]) == ("cars", 200)
    (app_line,) = wait_for(lambda: logged(gw, "gunicorn.log", request_id))
    assert (app_line["protocol"], app_line["backend"], app_line["rows"]) == ("plumber", "plumber", None)


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--no-first-run", f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


class _Rows(HTMLParser):
    """model → {field: text} from the status page's table (its cells carry data-field)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, str]] = {}
        self._model: str | None = None
        self._field: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "tr" and found.get("data-model"):
            self._model = found["data-model"]
            self.rows[self._model] = {}
        elif tag == "td" and self._model and found.get("data-field"):
            self._field = found["data-field"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._field = None

    def handle_data(self, data: str) -> None:
        if self._model and self._field:
            self.rows[self._model][self._field] = self.rows[self._model].get(self._field, "") + data


def test_status_page_in_headless_chromium_shows_the_traffic(gw: Stack, tmp_path: Path) -> None:
    for _ in range(3):
        assert gw.post("/models/mtcars/predict", json=MTCARS_ROWS).status_code == 200
    assert gw.post("/models/iris/predict", json=[IRIS_ROW]).status_code == 200
    # virtual time: the page's fetch and its first render happen before the DOM is dumped
    dumped = chromium("--virtual-time-budget=8000", "--dump-dom", gw.url + "/", profile=tmp_path / "profile")
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    parser = _Rows()
    parser.feed(dumped.stdout)
    assert set(parser.rows) == set(MODELS), dumped.stdout[-3000:]
    mtcars = parser.rows["mtcars"]
    assert int(mtcars["requests"]) >= 3
    assert (mtcars["backend"], mtcars["language"], mtcars["ready"], mtcars["workers"]) == ("plumber", "r", "yes", "2/2")
    assert float(mtcars["p50_ms"]) > 0
    assert int(parser.rows["iris"]["requests"]) >= 1
    assert parser.rows["iris"]["workers"] == "\N{EN DASH}"  # not a pool
    screenshot = tmp_path / "status.png"
    shot = chromium("--virtual-time-budget=8000", "--window-size=1400,420", f"--screenshot={screenshot}",
                    gw.url + "/", profile=tmp_path / "profile")
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert screenshot.stat().st_size > 5000
    print(f"status page screenshot: {screenshot}")


DEPLOY = REPO_ROOT / "deploy"


def queried_metrics(expr: str) -> set[str]:
    """The metric names an expression reads (gateway_*; label names and functions are not)."""
    stripped = re.sub(r'"[^"]*"', '""', expr)  # label values such as "5.." or "$model"
    return {word for word in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", stripped) if word.startswith("gateway_")}


def dashboard_exprs() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "gateway.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    exprs += [var["query"]["query"] for var in dashboard["templating"]["list"] if isinstance(var.get("query"), dict)]
    return exprs


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_the_rules_file_has_prometheus_structure() -> None:
    """What `promtool check rules` checks first (promtool itself is not a dependency of ours)."""
    document = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    assert set(document) == {"groups"}
    names = [group["name"] for group in document["groups"]]
    assert len(names) == len(set(names))
    for rule in alert_rules():
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", rule["alert"])
        assert isinstance(rule["expr"], str) and rule["expr"].strip()
        assert rule["expr"].count("(") == rule["expr"].count(")")
        if "for" in rule:
            assert re.fullmatch(r"\d+[smhd]", rule["for"])
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    (job,) = config["scrape_configs"]
    assert (job["job_name"], job["metrics_path"]) == ("gateway", "/metrics")
    alerts = {rule["alert"] for rule in alert_rules()}
    assert {"GatewayModelNotReady", "GatewayErrorRatio", "GatewayP99OverTimeout"} <= alerts


def test_every_metric_the_dashboard_and_alerts_query_is_in_a_real_scrape(gw: Stack) -> None:
    assert gw.post("/models/iris/predict", json=[IRIS_ROW]).status_code == 200
    scraped = {name for name, _ in scrape(gw)}
    exprs = dashboard_exprs() + [rule["expr"] for rule in alert_rules()]
    wanted = set().union(*(queried_metrics(expr) for expr in exprs))
    assert {"gateway_requests_total", "gateway_request_duration_seconds_bucket", "gateway_pool_workers",
            "gateway_batch_size_sum", "gateway_model_timeout_seconds"} <= wanted
    assert wanted - scraped == set()
