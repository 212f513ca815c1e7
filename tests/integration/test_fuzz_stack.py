"""Bounded fuzzing of a live stack through its public NGINX: R models in Plumber pools, the same
lm on rpy2, and a Python model.

Two tiers. schemathesis generates requests for every operation of the stack's own
/openapi.json and checks each reply against the document (never a 5xx, documented statuses,
content types and bodies). A hypothesis property test aims at R: rows whose values are any JSON
(R code, backticks, `${...}`, unicode, extreme numbers, nested objects) under odd column names.
An oracle built from the contract (tests/data/validation_cases.json's ordering: missing, then
unexpected, then values) says which column each 4xx must name. The Plumber and rpy2 copies of
the lm must answer alike, no R worker or Gunicorn worker may die, and no file that an evaluated
R expression would create may appear. An echo model (string, unicode factor, date, datetime,
logical columns) must hand back exactly what it was sent, on both R backends.

In a git worktree that shares another checkout's venv, run with PYTHONPATH set to the worktree:
the stack's Gunicorn imports `gateway` from wherever the venv's editable install points.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.codecs.rwire import R_INTEGER
from gateway.runtime import procs, stack
from tests.conftest import build_churn
from tests.integration.conftest import Stack, start_stack
from tests.integration.r_models import build_r_store, rscript

MODELS = {
    "mtcars": {"backend": "plumber", "workers": 2, "timeout_s": 20},  # lm: doubles, an integer, a factor
    "transmission": {"backend": "plumber", "workers": 1, "timeout_s": 20},  # randomForest classifier
    "fragile": {"backend": "plumber", "workers": 1, "timeout_s": 20},  # stop()s on negative x
    "mtcars_inproc": {"backend": "rpy2", "timeout_s": 20},  # the same lm bytes, R inside Gunicorn
    "texts": {"backend": "plumber", "workers": 1, "timeout_s": 20},  # echoes text, dates, times, logicals
    "texts_inproc": {"backend": "rpy2", "timeout_s": 20},
    "churn": {"backend": "python"},
}
# A model that hands its input back: every value that reaches R must come back as it was sent
# (normalised: times in UTC). Levels hold non-ASCII on purpose; a string column lets any text in.
ECHO_MODEL = r"""
store <- commandArgs(TRUE)[1]
echo <- function(newdata, type) newdata
# An NA in every column: model.json then declares each nullable, so nulls reach R and come back.
sample <- data.frame(note = c("a", "b", "c", NA),
                     colour = factor(c("rouge", "caf\u00e9", "\u65e5\u672c", "\U0001F697", NA))[c(1:3, 5)],
                     day = as.Date("2024-02-29") + c(0:2, NA),
                     moment = as.POSIXct("2024-02-29 12:00:00", tz = "UTC") + c(0:2, NA),
                     flag = c(TRUE, FALSE, NA, TRUE), stringsAsFactors = FALSE)
gatewayr::save_model(echo, store, "texts", sample = sample, description = "hands its input back")
"""
R_MODELS = ("mtcars", "transmission", "fragile")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Bounded for a loaded 2-core host: schemathesis generates this many cases per operation and mode
# (schema-valid, schema-breaking); the property test posts to R this many times (twice for
# mtcars: Plumber and rpy2), the round trip half as often (twice each: Plumber and rpy2).
SCHEMA_EXAMPLES = 4
PROPERTY_EXAMPLES = 120

# What an R worker that evaluated its data would leave behind (or do: q() kills the worker).
PWNED = Path(tempfile.gettempdir()) / f"gateway-fuzz-pwned-{os.getpid()}"
R_CODE = [
    f'system("touch {PWNED}")', f"file.create('{PWNED}')", f"`file.create`('{PWNED}')",
    f"eval(parse(text = \"file.create('{PWNED}')\"))", f"\"); file.create('{PWNED}'); (\"",
    f"${{file.create('{PWNED}')}}", "q()", "quit(save = 'no', status = 1)", "tools::pskill(Sys.getpid(), 9L)",
    "`q`()", "Sys.sleep(60)", "stop('boom')", "NA", "NULL", "NaN", "Inf", "-Inf", "TRUE", "T", "1e400", "0x1p3",
    "auto ", "AUTO", "manual\u0000", "V-shaped\n", "", "\u202eauto", "🚗", "\\", "'", '"', "%s%n", "..1",
]
EXTREMES = [R_INTEGER[1], R_INTEGER[1] + 1, -(2**31), R_INTEGER[0], 2**53 + 1, 2**63, -(2**64), 5e-324,
            1.7976931348623157e308, -1e308, 1e16, 1e-300, -0.0, 0, 1, -1]
_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.sampled_from(EXTREMES),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12), st.sampled_from(R_CODE),
)
_value = st.recursive(_scalar, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=5) | st.sampled_from(R_CODE), inner, max_size=3),
                      max_leaves=6)
_odd_names = st.one_of(st.sampled_from(R_CODE), st.text(max_size=10),
                       st.sampled_from(["WT", " wt", "wt ", "wt\u0000", "`wt`", "$wt", "wt.1", "..1", "x[1]"]))


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    store = build_r_store(tmp_path_factory.mktemp("r") / "store")
    rscript(ECHO_MODEL, str(store))
    for name in ("mtcars", "texts"):  # the same bytes on rpy2
        shutil.copytree(store / name / "1", store / f"{name}_inproc" / "1")
    build_churn(store)
    PWNED.unlink(missing_ok=True)
    with start_stack(tmp_path_factory.mktemp("fuzzstack"), MODELS, store=store) as running:
        yield running
    PWNED.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def baseline(gw: Stack) -> dict[str, Any]:
    """Every program's pid and every process of the stack (pid and start time) before fuzzing."""
    assert gw.get("/readyz").status_code == 200
    levels = next(spec["levels"] for spec in gw.get("/models/texts").json()["inputs"] if spec["name"] == "colour")
    return {"programs": gw.pids(), "family": _family(gw), "texts_levels": levels}


def _family(gw: Stack) -> set[procs.Proc]:
    supervisord = stack._supervisord_pid(gw.run_dir)
    assert supervisord is not None
    return procs.family(supervisord)


def assert_nothing_died_or_ran(gw: Stack, baseline: dict[str, Any]) -> None:
    """No program restarted, no process of the stack is gone, and no injected R code ran."""
    assert gw.pids() == baseline["programs"]
    gone = baseline["family"] - _family(gw)
    assert not gone, f"processes died while fuzzing: {sorted(p.pid for p in gone)}"
    assert not PWNED.exists(), "R evaluated code sent as data"


def test_schemathesis_against_the_live_stack(gw: Stack, baseline: dict[str, Any]) -> None:
    """Every operation of the live document, with schema-valid and schema-breaking inputs.

    Nothing is excluded: the document lists no admin operation, and every listed one is safe to
    call with any input (reads, health, predictions). schemathesis' pytest loader for a schema
    from a fixture does not run on pytest 9.2 (it reads the removed `Node._nodeid`), so each
    operation's strategy is driven by hypothesis here; every failing operation is reported.
    """
    schema = schemathesis.openapi.from_url(gw.url + "/openapi.json", timeout=30)
    failures: list[str] = []
    labels = []
    calls = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        labels.append(operation.label)
        # Schema-breaking data needs an input to break: a bare GET has none.
        has_inputs = any(True for _ in operation.iter_parameters()) or any(True for _ in operation.body)
        for mode in GenerationMode if has_inputs else [GenerationMode.POSITIVE]:

            @settings(max_examples=SCHEMA_EXAMPLES, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: schemathesis.Case) -> None:
                nonlocal calls
                calls += 1
                case.call_and_validate(checks=CHECKS, timeout=30)

            try:
                run()
            except Exception as exc:  # collect every operation's failure, not only the first
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    assert {f"POST /models/{m}/predict" for m in MODELS} <= set(labels), labels
    assert not failures, "\n\n".join(failures)
    assert calls > 2 * len(labels), (calls, len(labels))  # the run did reach the stack


def test_the_schema_run_left_every_worker_alive(gw: Stack, baseline: dict[str, Any]) -> None:
    assert_nothing_died_or_ran(gw, baseline)


# --- the property test: hostile rows for the R models -------------------------------------------

def _valid_value(spec: dict[str, Any]) -> st.SearchStrategy[Any]:
    return {"double": st.floats(min_value=-500, max_value=500) | st.integers(0, 400),
            "integer": st.integers(2, 12), "factor": st.sampled_from(spec["levels"] or ["a"])}[spec["type"]]


@st.composite
def hostile_rows(draw: st.DrawFn, inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mostly valid rows, some values and names replaced, added or dropped."""
    rows = []
    for _ in range(draw(st.integers(0, 3))):
        row = {spec["name"]: draw(_valid_value(spec) | st.none()) for spec in inputs}
        if draw(st.integers(0, 2)) == 0:
            row.update(draw(st.dictionaries(st.sampled_from([s["name"] for s in inputs]), _value, max_size=2)))
        if draw(st.integers(0, 5)) == 0:
            row.update(draw(st.dictionaries(_odd_names, _value, min_size=1, max_size=2)))
        if draw(st.integers(0, 6)) == 0:
            row.pop(draw(st.sampled_from(list(row))), None)
        rows.append(row)
    return rows


@st.composite
def hostile_params(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly none (so that rows reach R), else a known type or any value under any name."""
    pick = draw(st.integers(0, 9))
    if pick < 6:
        return {}
    if pick < 8:
        return {"type": draw(st.sampled_from(["response", "prob"]))}
    return draw(st.fixed_dictionaries({"type": _value}) | st.dictionaries(_odd_names, _value, min_size=1, max_size=1))


def _fits(value: Any, spec: dict[str, Any]) -> bool:
    """The gateway's validator (gateway.codecs.validate), restated from the contract."""
    if value is None:
        return spec.get("nullable", True)  # a non-nullable column refuses null (and a missing key)
    if spec["type"] == "double":
        return type(value) in (int, float) and math.isfinite(float(value))
    if spec["type"] == "integer":
        whole = type(value) is int or (type(value) is float and value.is_integer())
        return whole and -(2**63) <= value <= 2**63 - 1
    return isinstance(value, str) and value in spec["levels"]


def expected_refusal(rows: list[dict[str, Any]], params: dict[str, Any], inputs: list[dict[str, Any]],
                     model: str, allowed: tuple[str, ...]) -> tuple[int, str] | None:
    """(status, a fragment the detail must hold) for a request the gateway must refuse, else None."""
    for key in params:
        if key != "type":
            return 400, f"unknown param '{key}'"
    if params.get("type", "response") not in allowed:
        return 400, "param 'type' must be one of"
    if not rows:
        return 422, "the request has no rows"
    names = list(dict.fromkeys(key for row in rows for key in row))
    schema = [spec["name"] for spec in inputs]
    for name in schema:
        if name not in names:
            return 422, f"column '{name}' is missing"
    for name in names:
        if name not in schema:
            return 422, f"column '{name}' is not an input of model '{model}'"
    for spec in inputs:
        if not all(_fits(row.get(spec["name"]), spec) for row in rows):
            return 422, f"column '{spec['name']}' "
    for spec in inputs:  # R's integers are 32-bit: checked when the wire request is built
        values = [row.get(spec["name"]) for row in rows]
        if spec["type"] == "integer" and any(v is not None and not R_INTEGER[0] <= v <= R_INTEGER[1] for v in values):
            return 422, f"column '{spec['name']}' holds "
    if model == "fragile" and any((row.get("x") or 0) < 0 for row in rows):
        return 422, "x must be non-negative, got "  # R's stop() message, passed on
    return None


def check_reply(reply: requests.Response, model: str, rows: list[dict[str, Any]], params: dict[str, Any],
                inputs: list[dict[str, Any]], refusal: tuple[int, str] | None) -> None:
    shown = f"{reply.status_code} {reply.text[:400]} for rows={rows!r} params={params!r}"
    assert reply.status_code < 500, shown
    if refusal is not None:
        status, fragment = refusal
        assert reply.status_code == status, shown
        assert reply.headers["Content-Type"] == "application/problem+json", shown
        assert fragment in reply.json()["detail"], shown
        assert reply.json().get("model") == model, shown  # the problem names the model too
        return
    assert reply.status_code == 200, shown
    predictions = reply.json()["predictions"]
    assert len(predictions) == len(rows), shown
    for row, prediction in zip(rows, predictions, strict=True):
        if any(row.get(spec["name"]) is None for spec in inputs):
            # R's NA for a missing input, a null in JSON (a dict of nulls for probabilities)
            assert prediction is None or set(prediction.values()) == {None}, shown
        elif isinstance(prediction, dict):
            assert set(prediction) == {"auto", "manual"} and all(isinstance(p, float) for p in prediction.values())
        elif all(abs(v) < 1e300 for v in row.values() if not isinstance(v, str)):
            assert isinstance(prediction, float | str), shown


@settings(max_examples=PROPERTY_EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_hostile_rows_for_r_models(gw: Stack, baseline: dict[str, Any], r_meta: dict[str, dict[str, Any]],
                                  data: st.DataObject) -> None:
    model = data.draw(st.sampled_from(R_MODELS), label="model")
    meta = r_meta[model]
    rows = data.draw(hostile_rows(meta["inputs"]), label="rows")
    params = data.draw(hostile_params(), label="params")
    body: Any = {"instances": rows, "params": params} if params or data.draw(st.booleans()) else rows
    refusal = expected_refusal(rows, params, meta["inputs"], model, meta["allowed"])
    reply = gw.post(f"/models/{model}/predict", json=body)
    event(f"{model}: {reply.status_code}")
    check_reply(reply, model, rows, params, meta["inputs"], refusal)
    if model == "mtcars":  # the same lm in-process: the same answer, word for word
        twin = gw.post("/models/mtcars_inproc/predict", json=body)
        assert twin.status_code == reply.status_code, (twin.text[:300], reply.text[:300])
        if reply.status_code == 200:
            assert twin.json()["predictions"] == reply.json()["predictions"]
        else:
            assert twin.json()["detail"] == reply.json()["detail"].replace("'mtcars'", "'mtcars_inproc'")


@pytest.fixture(scope="module")
def r_meta(gw: Stack) -> dict[str, dict[str, Any]]:
    """Each R model's inputs and accepted `type` params, as GET /models/<name> publishes them."""
    found = {}
    for model in R_MODELS:
        reply = gw.get(f"/models/{model}")
        assert reply.status_code == 200, reply.text
        doc = reply.json()
        found[model] = {"inputs": doc["inputs"], "allowed": tuple(doc["params"]["type"])}
    return found


def test_the_property_run_left_every_worker_alive(gw: Stack, baseline: dict[str, Any]) -> None:
    assert_nothing_died_or_ran(gw, baseline)


# --- the round trip: whatever R accepts, it hands back unchanged ---------------------------------

_offsets = st.integers(-14 * 60, 14 * 60).map(lambda minutes: timezone(timedelta(minutes=minutes)))
# POSIXct is a double of seconds since 1970: whole seconds are exact in every year, and
# milliseconds round-trip to the microsecond while a double's step is below 1 µs (about 1700-2240).
_moments = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)).map(lambda m: m.replace(microsecond=0)),
    st.datetimes(min_value=datetime(1700, 1, 1), max_value=datetime(2240, 1, 1)).map(
        lambda m: m.replace(microsecond=m.microsecond // 1000 * 1000)),
)


@st.composite
def echo_rows(draw: st.DrawFn, levels: list[str]) -> list[dict[str, Any]]:
    rows = []
    for _ in range(draw(st.integers(1, 3))):
        moment = draw(_moments)
        if draw(st.booleans()):
            moment = moment.replace(tzinfo=draw(_offsets))
        rows.append({
            "note": draw(st.text(max_size=30) | st.sampled_from([*R_CODE, "a\x00b", "\x00"]) | st.none()),
            "colour": draw(st.sampled_from(levels) | st.none()),
            "day": draw(st.dates().map(date.isoformat) | st.none()),
            "moment": draw(st.just(moment.isoformat()) | st.none()),
            "flag": draw(st.booleans() | st.none()),
        })
    return rows


def echoed(row: dict[str, Any]) -> dict[str, Any]:
    """What the echo model must answer for a row: the same values, times as UTC with a Z."""
    moment = row["moment"]
    if moment is not None:
        utc = datetime.fromisoformat(moment)
        utc = utc.replace(tzinfo=UTC) if utc.tzinfo is None else utc.astimezone(UTC)
        moment = (f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}"
                  + (f".{utc.microsecond:06d}" if utc.microsecond else "") + "Z")
    return {**row, "moment": moment}


@settings(max_examples=PROPERTY_EXAMPLES // 2, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_r_hands_back_what_it_was_sent(gw: Stack, baseline: dict[str, Any], data: st.DataObject) -> None:
    levels = baseline["texts_levels"]
    rows = data.draw(echo_rows(levels), label="rows")
    for model in ("texts", "texts_inproc"):
        reply = gw.post(f"/models/{model}/predict", json=rows)
        shown = f"{model}: {reply.status_code} {reply.text[:400]} for {rows!r}"
        nul = next((i for i, row in enumerate(rows, 1) if "\x00" in (row["note"] or "")), None)
        if nul is not None:  # R strings end at NUL: refused, not cut short
            event("NUL refused")
            assert reply.status_code == 422, shown
            assert reply.json()["detail"].startswith(f"column 'note' holds a NUL character at row {nul}"), shown
            assert reply.json().get("model") == model, shown
            continue
        assert reply.status_code == 200, shown
        assert reply.json()["predictions"] == [echoed(row) for row in rows], shown


def test_the_round_trip_left_every_worker_alive(gw: Stack, baseline: dict[str, Any]) -> None:
    assert_nothing_died_or_ran(gw, baseline)
