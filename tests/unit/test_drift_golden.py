"""model.json's drift reference from a sample: Python writes what tests/data/drift_reference.json
says, as R's gatewayr does (r_services/tests/testthat/test-reference.R reads the same file)."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest

from gateway.drift_reference import reference_from_frame
from gateway.meta import InputSpec
from gateway.paths import REPO_ROOT

CASES_PATH = REPO_ROOT / "tests" / "data" / "drift_reference.json"


def frame_of(case: dict[str, Any]) -> pd.DataFrame:
    """The case's sample as a pandas user would hold it (a factor as a Categorical)."""
    columns = {}
    for name, values in case["columns"].items():
        kind = case["types"][name]
        if kind == "factor":
            columns[name] = pd.Categorical(values, categories=case["levels"][name])
        elif kind == "logical":
            columns[name] = pd.array(values, dtype="boolean")
        else:
            columns[name] = values
    return pd.DataFrame(columns)


CASES = json.loads(CASES_PATH.read_text(encoding="utf-8"))["cases"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_python_writes_the_golden_reference(case: dict[str, Any]) -> None:
    inputs = [InputSpec(name, kind, tuple(case.get("levels", {}).get(name, ())) or None)
              for name, kind in case["types"].items()]
    got = reference_from_frame(frame_of(case), inputs)
    assert got.keys() == case["reference"].keys() and got.get("note") == case["reference"].get("note")
    assert got["columns"].keys() == case["reference"]["columns"].keys()
    for name, expected in case["reference"]["columns"].items():
        for key, value in expected.items():
            assert got["columns"][name][key] == (value if isinstance(value, str) else pytest.approx(value)), (name, key)
