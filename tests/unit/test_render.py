"""Rendered configs: NGINX accepts them, and each file says what the settings and plan say."""

from __future__ import annotations

import configparser
import dataclasses
import json
import re
import runpy
import subprocess
from pathlib import Path

import pytest

from gateway.paths import REPO_ROOT
from gateway.runtime.plan import Endpoint, Plan, PoolPlan
from gateway.runtime.render import NGINX, metrics_dir, nginx_command, render_all, render_to, supervisor_socket
from gateway.runtime.tomlwrite import dump_toml
from gateway.settings import Settings, load_settings, settings_from_dict

BODY_LIMIT = 4096
MTCARS_PORTS = (41001, 41002, 41003)
CARS_PORT = 41010


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    script = tmp_path / "cars" / "plumber.R"
    script.parent.mkdir()
    script.write_text("#* @get /ping\nfunction() 'pong'\n")
    raw = {
        "server": {"workers": 3, "threads": 5, "timeout_s": 60, "body_limit_bytes": BODY_LIMIT,
                   "run_dir": "run"},
        "store": {"path": "store"},
        "models": {
            "iris": {"backend": "python"},
            "mtcars": {"backend": "plumber", "workers": 3, "timeout_s": 20},
            "cars": {"backend": "plumber", "workers": 1, "script": "cars/plumber.R",
                     "predict_route": "/predict"},
        },
    }
    return settings_from_dict(raw, base_dir=tmp_path)


@pytest.fixture
def plan(settings: Settings) -> Plan:
    """Written by hand, so no model store is needed."""
    mtcars = PoolPlan("mtcars", "model", "/store/mtcars/2", "2",
                      tuple(Endpoint("127.0.0.1", p) for p in MTCARS_PORTS), 20.0)
    cars = PoolPlan("cars", "script", str(settings.resolve("cars/plumber.R")), "script",
                    (Endpoint("127.0.0.1", CARS_PORT),), 30.0)
    return Plan(str(settings.run_dir), Endpoint("127.0.0.1", 40080), Endpoint("127.0.0.1", 40081),
                Endpoint("127.0.0.1", 40082), {"mtcars": mtcars, "cars": cars})


@pytest.fixture
def rendered(settings: Settings, plan: Plan) -> dict[str, Path]:
    return render_all(settings, plan)


def test_nginx_accepts_the_rendered_config(rendered: dict[str, Path], plan: Plan) -> None:
    result = subprocess.run([*nginx_command(plan.run_dir), "-t"], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert (Path(plan.run_dir) / "logs").is_dir()
    assert (Path(plan.run_dir) / "tmp").is_dir()


def test_nginx_upstreams_list_every_worker(rendered: dict[str, Path]) -> None:
    text = rendered["nginx"].read_text()
    assert _upstream_servers(text, "r_mtcars") == [f"127.0.0.1:{p}" for p in MTCARS_PORTS]
    assert _upstream_servers(text, "r_cars") == [f"127.0.0.1:{CARS_PORT}"]
    assert _upstream_servers(text, "gateway_app") == ["127.0.0.1:40081"]
    assert "listen 127.0.0.1:40080;" in text
    assert "listen 127.0.0.1:40082;" in text
    assert "daemon off;" in text
    assert "proxy_intercept_errors on" not in text


def test_nginx_limits_and_timeouts_follow_the_settings(rendered: dict[str, Path]) -> None:
    text = rendered["nginx"].read_text()
    assert f"client_max_body_size {BODY_LIMIT};" in text
    assert "proxy_read_timeout 65s;" in text  # server.timeout_s + 5
    mtcars = text[text.index("location /r/mtcars/"):]
    assert "proxy_read_timeout 50s;" in mtcars[: mtcars.index("}")]  # model timeout_s + 30: a backstop
    assert "proxy_ignore_client_abort on;" in mtcars[: mtcars.index("}")]
    assert "error_page 502 503 504 = @r_mtcars_failed;" in text


def test_nginx_error_bodies_are_json(rendered: dict[str, Path]) -> None:
    """Every `return` body NGINX answers is valid JSON once the request id is filled in."""
    text = rendered["nginx"].read_text()
    bodies = re.findall(r"return (\d{3}) '((?:[^'\\]|\\.)*)';", text)
    assert {code for code, _ in bodies} == {"400", "413", "414", "429", "431", "503", "502", "404"}
    for _code, raw in bodies:
        json.loads(re.sub(r"\\(.)", r"\1", raw).replace("${gateway_request_id}", "rid"))
    assert f"limit of {BODY_LIMIT} bytes" in dict(bodies)["413"]


# A path of each protocol whose envelope is not problem+json, and how that envelope looks.
_ENVELOPES = {
    "problem": ("/models/iris/predict", "application/problem+json"),
    "mlflow": ("/models/iris/invocations", "application/json"),
    "v2": ("/v2/models/iris/infer", "application/json"),
}


def _page_locations(text: str) -> dict[tuple[str, str], tuple[str, int, dict]]:
    """(page, envelope) → (content type, status, body) of every error page of the public server."""
    pages = {}
    pattern = (r"location (?:@(\w+?)_|= /__gateway/(\w+)/)(problem|mlflow|v2) \{\n(?:\s+internal;\n)?"
               r"\s+default_type (\S+);\n(?:.*\n)*?\s+return (\d{3}) '((?:[^'\\]|\\.)*)';")
    for named, uri, envelope, content_type, status, raw in re.findall(pattern, text):
        body = json.loads(re.sub(r"\\(.)", r"\1", raw).replace("${gateway_request_id}", "rid"))
        pages[(named or uri, envelope)] = (content_type, int(status), body)
    return pages


def test_nginx_error_pages_answer_in_each_protocols_envelope(settings: Settings, plan: Plan) -> None:
    limited = dataclasses.replace(settings, server=dataclasses.replace(settings.server, rate_limit_rps=5))
    text = render_all(limited, plan)["nginx"].read_text()
    pages = _page_locations(text)
    names = {"too_large": 413, "app_down": 503, "nginx_failed": 503, "rate_limited": 429,
             "400": 400, "414": 414, "431": 431}
    assert set(pages) == {(page, envelope) for page in names for envelope in _ENVELOPES}
    for (page, envelope), (content_type, status, body) in pages.items():
        assert status == names[page] and content_type == _ENVELOPES[envelope][1]
        if envelope == "problem":
            assert body["status"] == status and body["request_id"] == "rid" and body["detail"]
        elif envelope == "mlflow":
            assert set(body) == {"error_code", "message", "request_id"} and body["request_id"] == "rid"
        else:
            assert set(body) == {"error"} and body["error"]
    assert pages[("rate_limited", "mlflow")][2]["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    assert pages[("too_large", "mlflow")][2]["error_code"] == "RESOURCE_EXHAUSTED"
    assert f"limit of {BODY_LIMIT} bytes" in pages[("too_large", "v2")][2]["error"]
    # Every page is chosen by the envelope the request's path maps to.
    for directive in ("error_page 413 @too_large_$gateway_envelope;",
                      "error_page 502 503 504 = @app_down_$gateway_envelope;",
                      "error_page 429 @rate_limited_$gateway_envelope;",
                      "error_page 431 494 =431 /__gateway/431/$gateway_envelope;"):
        assert directive in text


def test_the_envelope_map_sends_each_protocols_paths_to_its_envelope(rendered: dict[str, Path]) -> None:
    text = rendered["nginx"].read_text()
    block = text[text.index("map $uri $gateway_envelope {"):]
    entries = re.findall(r'^\s+"~(.*)" (\w+);$', block[: block.index("\n    }")], re.MULTILINE)
    assert [envelope for _, envelope in entries] == ["mlflow", "v2"]

    def envelope_of(path: str) -> str:  # NGINX's map: the first regex that matches, else the default
        return next((envelope for regex, envelope in entries if re.search(regex, path)), "problem")

    for envelope, (path, _) in _ENVELOPES.items():
        assert envelope_of(path) == envelope
    for path in ("/invocations", "/ping", "/models/iris/version", "/models/iris/health"):
        assert envelope_of(path) == "mlflow"
    for path in ("/v2", "/v2/health/ready", "/models/iris", "/vetiver/iris/predict", "/plumber/cars/ping", "/v2x"):
        assert envelope_of(path) == ("v2" if path.startswith("/v2/") or path == "/v2" else "problem")


def test_supervisord_runs_each_pool_as_a_group(rendered: dict[str, Path], plan: Plan) -> None:
    conf = configparser.RawConfigParser()
    conf.read(rendered["supervisord"])
    programs = conf.get("group:plumber-mtcars", "programs").split(",")
    assert programs == ["plumber-mtcars-1", "plumber-mtcars-2", "plumber-mtcars-3"]
    for name, port in zip(programs, MTCARS_PORTS, strict=True):
        command = conf.get(f"program:{name}", "command").split()
        # the model's timeout_s last: R stops a predict that runs longer
        # the entrypoint is package data (gateway/_r, a symlink to plumber/ in a checkout)
        assert command == ["Rscript", str(REPO_ROOT / "gateway" / "_r" / "plumber" / "worker.R"), "/store/mtcars/2",
                           "127.0.0.1", str(port), "20"]
        assert conf.get(f"program:{name}", "environment") == (
            f'R_LIBS="{REPO_ROOT / ".rlib"}",GATEWAY_MODEL="mtcars",GATEWAY_LOG_FLUSH_MS="100"')
        assert conf.get(f"program:{name}", "autorestart") == "true"
    cars = conf.get("program:plumber-cars-1", "command").split()
    assert cars[1] == str(REPO_ROOT / "gateway" / "_r" / "plumber" / "script.R")
    assert cars[-1] == str(CARS_PORT)
    assert conf.get("unix_http_server", "file") == str(supervisor_socket(plan.run_dir))
    assert conf.get("supervisord", "nodaemon") == "false"


def test_supervisord_starts_r_then_gunicorn_then_nginx(rendered: dict[str, Path], plan: Plan) -> None:
    conf = configparser.RawConfigParser()
    conf.read(rendered["supervisord"])
    priority = {s: int(conf.get(s, "priority")) for s in conf.sections() if conf.has_option(s, "priority")}
    assert priority["program:plumber-mtcars-1"] < priority["program:gunicorn"] < priority["program:nginx"]
    gunicorn = conf.get("program:gunicorn", "command").split()
    assert gunicorn[-1] == "gateway.wsgi:app"
    assert f"GATEWAY_PLAN=\"{plan.run_dir}/plan.json\"" in conf.get("program:gunicorn", "environment")
    # rpy2 models in Gunicorn load gatewayr from the library the R workers use
    assert f'GATEWAY_R_LIBRARY="{REPO_ROOT / ".rlib"}"' in conf.get("program:gunicorn", "environment")
    assert conf.get("program:nginx", "command").startswith(f"{NGINX} -p {plan.run_dir}/")


def test_nginx_access_lines_leave_in_batches_unless_log_flush_ms_is_0(settings: Settings, plan: Plan) -> None:
    text = render_all(settings, plan)["nginx"].read_text(encoding="utf-8")
    assert "access_log /dev/stdout gateway buffer=4k flush=100ms;" in text
    unbatched = dataclasses.replace(settings, server=dataclasses.replace(settings.server, log_flush_ms=0))
    assert "access_log /dev/stdout gateway;" in render_all(unbatched, plan)["nginx"].read_text(encoding="utf-8")


def test_foreground_renders_nodaemon(settings: Settings, plan: Plan) -> None:
    conf = configparser.RawConfigParser()
    conf.read(render_all(settings, plan, foreground=True)["supervisord"])
    assert conf.get("supervisord", "nodaemon") == "true"


def test_gunicorn_config_executes(rendered: dict[str, Path]) -> None:
    config = runpy.run_path(str(rendered["gunicorn"]))
    assert config["bind"] == ["127.0.0.1:40081"]
    assert (config["workers"], config["threads"], config["worker_class"]) == (3, 5, "gthread")
    assert config["timeout"] == 60
    assert config["preload_app"] is False
    # Imported in the master so a replacement worker boots in well under a second: libraries only.
    assert config["_PRELOAD"] == ["flask", "numpy", "pandas", "sklearn", "skops.io"]


def test_gunicorn_preloads_no_sklearn_without_python_models(settings: Settings, plan: Plan) -> None:
    r_only = dataclasses.replace(settings, models={k: m for k, m in settings.models.items() if k != "iris"})
    assert "_PRELOAD = ['flask', 'numpy', 'pandas']\n" in render_all(r_only, plan)["gunicorn"].read_text()


def test_the_app_reads_back_the_same_settings(rendered: dict[str, Path], settings: Settings) -> None:
    copy = load_settings(rendered["settings"], env={})
    assert copy.server == dataclasses.replace(settings.server, run_dir=str(settings.run_dir))
    assert copy.store_path == settings.store_path
    assert copy.run_dir == settings.run_dir
    assert copy.models["cars"].script == str(settings.resolve("cars/plumber.R"))
    assert copy.models["mtcars"] == settings.models["mtcars"]


def test_render_to_moves_every_path(settings: Settings, plan: Plan, tmp_path: Path) -> None:
    out = tmp_path / "elsewhere"
    files = render_to(settings, plan, out)
    assert Plan.load(out / "plan.json").run_dir == str(out)
    assert str(out / "nginx.pid") in files["nginx"].read_text()
    assert str(settings.run_dir) not in files["supervisord"].read_text()


def test_long_run_dirs_get_a_short_socket(tmp_path: Path) -> None:
    assert supervisor_socket(tmp_path) == tmp_path.resolve() / "supervisor.sock"
    deep = tmp_path / ("x" * 120)
    assert len(str(supervisor_socket(deep))) < 100


@pytest.mark.parametrize("text", ['plain', 'a "quote" and \\ backslash', "tab\tnewline\n", "é ü 中", "del\x7f"])
def test_toml_strings_round_trip(text: str) -> None:
    import tomllib

    raw = {"server": {"name": text, "n": 3, "x": 1.5, "flag": True}, "models": {"a": {"batch": {"k": 1}}}}
    assert tomllib.loads(dump_toml(raw)) == raw


def _upstream_servers(text: str, name: str) -> list[str]:
    block = re.search("upstream " + re.escape(name) + r" \{(.*?)\}", text, re.S)
    assert block, f"no upstream {name}"
    return re.findall(r"^\s*server (\S+?)[ ;]", block.group(1), re.M)


def _location(text: str, path: str) -> str:
    block = text[text.index(f"location {path} {{"):]
    return block[: block.index("}")]


def test_only_idempotent_routes_retry_posts(rendered: dict[str, Path]) -> None:
    """Predicts may be re-sent to another worker; a user's own script routes may not."""
    text = rendered["nginx"].read_text()
    assert "non_idempotent" in _location(text, "~ ^/models/[^/]+/(versions/[^/]+/)?predict$")
    assert "non_idempotent" not in _location(text, "/")
    assert "proxy_next_upstream error timeout http_502 non_idempotent;" in _location(text, "/r/mtcars/")
    assert "proxy_next_upstream error timeout http_502;" in _location(text, "/r/cars/")


def test_no_keepalive_to_plumber_workers(rendered: dict[str, Path]) -> None:
    """httpuv + reused connections = a delayed-ACK stall per reply (see bench/stack_latency.py)."""
    text = rendered["nginx"].read_text()
    for name in ("r_mtcars", "r_cars"):
        block = text[text.index(f"upstream {name} {{"):]
        assert "keepalive " not in block[: block.index("}")]
    app = text[text.index("upstream gateway_app {"):]
    assert "keepalive 32;" in app[: app.index("}")]


def test_observability_wiring(settings: Settings, plan: Plan) -> None:
    """Metrics dir for Gunicorn, dead workers marked, restarts counted, logs rotated per config."""
    settings = dataclasses.replace(
        settings, server=dataclasses.replace(settings.server, log_max_bytes=12345, log_backups=7))
    files = render_all(settings, plan)
    conf = configparser.RawConfigParser()
    conf.read(files["supervisord"])
    metrics = metrics_dir(plan.run_dir)
    assert f'PROMETHEUS_MULTIPROC_DIR="{metrics}"' in conf.get("program:gunicorn", "environment")
    # In memory, never on run_dir's disk: a full disk would SIGBUS a worker writing an mmapped page.
    assert metrics.parent == Path("/dev/shm") and not metrics.is_relative_to(plan.run_dir)
    assert conf.get("eventlistener:restarts", "events") == "PROCESS_STATE_STARTING"
    assert conf.get("eventlistener:restarts", "command").endswith(
        f"-m gateway.runtime.restarts {plan.run_dir}/restarts.json")
    for section in ("program:plumber-mtcars-1", "program:gunicorn", "program:nginx"):
        assert conf.get(section, "stdout_logfile_maxbytes") == "12345"
        assert conf.get(section, "stdout_logfile_backups") == "7"
    config = runpy.run_path(str(files["gunicorn"]))
    assert callable(config["child_exit"])
    assert f"os.makedirs({str(metrics)!r}, mode=0o700" in files["gunicorn"].read_text()
    nginx = files["nginx"].read_text()
    assert "log_format gateway escape=json '{" in nginx
    assert '"~^[A-Za-z0-9._-]{1,128}$" $http_x_request_id;' in nginx
