"""`gateway register` on a full disk or an unwritable store: a clear error and no half version.

A full disk is made real for one child process with RLIMIT_FSIZE: any write past the limit
fails with EFBIG, exactly where ENOSPC would strike (we run as root, so permission bits alone
would not stop a write).
"""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.demo import build_iris
from gateway.store import ModelStore

GATEWAY = Path(sys.executable).parent / "gateway"
IRIS_CSV = "sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n6.2,2.9,4.3,1.3\n"


@pytest.fixture(scope="module")
def artefact(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A real .skops file and a sample CSV to register."""
    root = tmp_path_factory.mktemp("src")
    build_iris(root / "store")
    sample = root / "sample.csv"
    sample.write_text(IRIS_CSV)
    return root / "store" / "iris" / "1" / "model.skops", sample


def register(
    config: Path, name: str, artefact: tuple[Path, Path], fsize: int | None = None
) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of death, as ENOSPC would be
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.run([str(GATEWAY), "--config", str(config), "register", name, str(artefact[0]),
                           "--sample", str(artefact[1])], capture_output=True, text=True, timeout=120,
                          preexec_fn=limit, check=False)


def test_full_disk_leaves_no_version_and_says_why(tmp_path: Path, artefact: tuple[Path, Path]) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('[store]\npath = "store"\n')
    assert artefact[0].stat().st_size > 1024
    failed = register(config, "flowers", artefact, fsize=1024)
    assert failed.returncode == 2, failed.stderr
    assert "nothing was stored" in failed.stderr and "disk full" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert list((tmp_path / "store" / "flowers").iterdir()) == []  # no version, no temp dir
    assert ModelStore(tmp_path / "store").versions("flowers") == []
    ok = register(config, "flowers", artefact)
    assert ok.returncode == 0, ok.stderr
    assert ModelStore(tmp_path / "store").versions("flowers") == ["1"]


def test_a_store_that_cannot_be_created_is_a_clear_error(tmp_path: Path, artefact: tuple[Path, Path]) -> None:
    (tmp_path / "store").write_text("a file where the store should be")
    config = tmp_path / "gateway.toml"
    config.write_text('[store]\npath = "store"\n')
    failed = register(config, "flowers", artefact)
    assert failed.returncode == 2, failed.stderr
    assert "is the store writable" in failed.stderr and "Traceback" not in failed.stderr
