"""The long-lived helper processes of a stack stay small: each runs in a fresh interpreter that
does what the idle process does, then reports which heavy libraries it has imported.

Every Python process of the stack that imports pandas gets pyarrow too (pandas imports it), and
an idle job runner that imported them held ~34 MiB of PSS for nothing; requests alone is ~11 MB.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("pandas", "pyarrow", "numpy", "requests", "urllib3", "prometheus_client", "sklearn", "flask")

# What each process does at start and while idle (no job, no restart, a probe that finds nothing).
IDLE = {
    "gateway.job_runner": """
from gateway.job_runner import Runner
from gateway.jobs import JobStore
runner = Runner(lambda: None, JobStore(run_dir))
assert runner.run_once() is False
""",
    "gateway.runtime.watchdog": """
from gateway.runtime.watchdog import Watched, http_probe
from gateway.topology import Endpoint
assert http_probe(Watched("p:p-1", Endpoint.unix(run_dir + "/none.sock"), "/healthz", 1.0)) is False
""",
    "gateway.runtime.restarts": """
from gateway.runtime.restarts import restarted_model
assert restarted_model({"eventname": "TICK_5"}, "") is None
""",
}


def heavy_imports(code: str, run_dir: Path) -> list[str]:
    script = f"import sys\nrun_dir = {str(run_dir)!r}\n{code}\n" \
             f"print(__import__('json').dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("module", sorted(IDLE))
def test_an_idle_helper_process_imports_no_heavy_library(module: str, tmp_path: Path) -> None:
    assert heavy_imports(f"import {module}\n{IDLE[module]}", tmp_path) == []


def test_the_check_sees_a_heavy_import(tmp_path: Path) -> None:
    """The subprocess check itself: a module that does import pandas is caught."""
    assert heavy_imports("import gateway.schema_infer", tmp_path)[:1] == ["numpy"]
