"""The `gateway` command: user errors are one line and an exit code, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import main


def test_a_missing_config_is_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(tmp_path / "nope.toml"), "status"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "nope.toml does not exist" in err


def test_config_after_the_subcommand_works_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('[server]\nrun_dir = "run"\n')
    assert main(["status", "--config", str(config)]) == 0
    assert capsys.readouterr().out.startswith("no stack is running")


def test_down_without_a_stack_is_not_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('[server]\nrun_dir = "run"\n')
    monkeypatch.setenv("GATEWAY_CONFIG", str(config))
    assert main(["down"]) == 0


def test_render_writes_a_runnable_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('[server]\nport = 9090\n[models.iris]\nbackend = "python"\n')
    out = tmp_path / "out"
    assert main(["--config", str(config), "render", "--out", str(out)]) == 0
    for name in ("nginx.conf", "supervisord.conf", "gunicorn.conf.py", "settings.toml", "plan.json"):
        assert (out / name).is_file()
    assert "listen 127.0.0.1:9090;" in (out / "nginx.conf").read_text()
    assert str(out / "nginx.conf") in capsys.readouterr().out


def test_log_target_stdout_without_exec_is_refused_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('[server]\nlog_target = "stdout"\nrun_dir = "run"\n', encoding="utf-8")
    assert main(["up", "--detach", "--config", str(config)]) == 2
    assert "--exec" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
