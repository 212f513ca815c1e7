"""A stack that cannot come up says which process failed and what it logged, and leaves nothing."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gateway.runtime import stack
from gateway.runtime.plan import free_ports
from gateway.settings import load_settings


def test_a_broken_plumber_script_fails_up_fast_naming_the_program_and_rs_error(tmp_path: Path) -> None:
    script = tmp_path / "broken" / "plumber.R"
    script.parent.mkdir()
    # Fails only when R runs it (a missing package is refused earlier, by `up`'s package check).
    script.write_text('x <- read.csv("notafile.csv")\n#* @get /x\nfunction() 1\n', encoding="utf-8")
    (port,) = free_ports(1)
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'[server]\nport = {port}\nworkers = 1\nrun_dir = "run"\nuser = ""\n[store]\npath = "store"\n'
        '[models.broken]\nbackend = "plumber"\nworkers = 1\nscript = "broken/plumber.R"\n',
        encoding="utf-8",
    )
    started = time.monotonic()
    with pytest.raises(stack.StackError) as caught:
        stack.up(load_settings(config, env={}), wait_s=90)
    assert time.monotonic() - started < 60
    message = str(caught.value)
    first = message.splitlines()[0]  # the cause first, in one line; the log tails after it
    assert first.startswith("model 'broken': plumber-broken-1 could not be started (FATAL in supervisord); R said: ")
    assert "cannot open the connection" in first  # R's own words (read.csv of a missing file), from the worker's log
    assert stack._supervisord_pid(tmp_path / "run") is None
    assert processes_mentioning(tmp_path) == []


def processes_mentioning(directory: Path) -> list[str]:
    """Command lines of running processes that name the directory (every program of the stack does)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(directory) in cmdline:
                found.append(f"{entry.name}: {cmdline}")
    return found
