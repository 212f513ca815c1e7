"""schemathesis against /openapi.json on the WSGI app: a bounded number of generated requests per
operation; none may get a 5xx, an undocumented status or content type, or a body that breaks
the documented schema."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import make_app
from tests.conftest import build_churn

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MAX_EXAMPLES = 15  # per operation: bounded so `make test` stays quick


def _app() -> Flask:
    """Built at collection, as schemathesis needs the operations then (its pytest fixture loader
    does not work with our pytest); the store is removed when the test process exits."""
    directory = Path(tempfile.mkdtemp(prefix="schemathesis-"))
    atexit.register(shutil.rmtree, directory, True)
    build_churn(directory / "store")
    return make_app(directory / "store", directory, models={"churn": {"backend": "python"}})


schema = schemathesis.openapi.from_wsgi("/openapi.json", _app())


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_5xx_and_no_response_breaks_the_spec(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=CHECKS)
