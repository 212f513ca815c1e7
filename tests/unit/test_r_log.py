"""What R said last in a worker's log: the reason `/readyz`, `gateway status` and `up` give."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.backends.r_reply import last_r_error

CASES = [
    ("one line", "starting\nError: model 'm' needs the R package 'x'\nExecution halted\n",
     "Error: model 'm' needs the R package 'x'"),
    ("continued", "Error in stopOnLine(lineNum, file[lineNum], e) : \n  Error on line #0: '' - there is no "
     "package called 'nope'\nCalls: <Anonymous> ... stopOnLine\nExecution halted\n",
     "Error in stopOnLine(lineNum, file[lineNum], e) : Error on line #0: '' - there is no package called 'nope'"),
    ("the last one", "Error: first\nExecution halted\nError: second\n", "Error: second"),
    ("none", "serving model 'm'\n", None),
]


@pytest.mark.parametrize(("log", "expected"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_last_r_error(tmp_path: Path, log: str, expected: str | None) -> None:
    path = tmp_path / "plumber-m-1.log"
    path.write_text(log, encoding="utf-8")
    assert last_r_error(path) == expected


def test_no_log_is_no_error(tmp_path: Path) -> None:
    assert last_r_error(tmp_path / "absent.log") is None
