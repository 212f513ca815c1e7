"""The gateway as a user installs it: a built wheel in a fresh venv, far from the checkout.

The wheel is built from a copy of the package's sources, pip-installs into a new venv (no
system site-packages, no checkout on sys.path), and from a directory outside the checkout
`gateway init`, `gateway register` (a scikit-learn model and an R lm saved by Rscript) and
`gateway up` serve both through NGINX. The first R use installs gatewayr into the XDG data dir;
nothing the stack runs or reads lies in the checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from gateway.paths import REPO_ROOT
from gateway.rlib import gatewayr_version
from gateway.runtime import procs, stack
from gateway.runtime.plan import free_ports

# What the wheel is built from: the package and the folders its gateway/_r symlinks point to.
SOURCES = ("pyproject.toml", "gateway", "r_services", "plumber", "demo")
TRAIN_IRIS = """
import sys
import skops.io
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
frame = load_iris(as_frame=True)
features = frame.data.set_axis(["sepal_length", "sepal_width", "petal_length", "petal_width"], axis=1)
model = LogisticRegression(max_iter=1000).fit(features, frame.target)
skops.io.dump(model, "iris.skops")
features.head(20).to_csv("iris.csv", index=False)
print(int(model.predict(features.iloc[[100]])[0]))
"""
FIT_LM = """
model <- lm(mpg ~ wt + hp, data = mtcars)
saveRDS(model, "lm.rds")
write.csv(mtcars[1:10, c("wt", "hp")], "lm.csv", row.names = FALSE)
cat(sprintf("%.17g", predict(model, data.frame(wt = 2.5, hp = 110))))
"""


@dataclass
class Installed:
    venv: Path
    work: Path  # the user's directory: cwd of every command, far from the checkout
    env: dict[str, str]
    port: int

    def run(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(args, cwd=self.work, env=self.env, capture_output=True, text=True,
                                timeout=timeout, check=False)
        assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
        return result

    def gateway(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return self.run(str(self.venv / "bin" / "gateway"), *args, timeout=timeout)


def _build_wheel(scratch: Path) -> Path:
    """A wheel from a clean copy of the sources (a reused build/ could ship files deleted since)."""
    source = scratch / "src"
    source.mkdir()
    for name in SOURCES:
        if (REPO_ROOT / name).is_dir():
            shutil.copytree(REPO_ROOT / name, source / name, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__", "tests"))
        else:
            shutil.copy(REPO_ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(scratch / "dist"),
                    str(source)], check=True, capture_output=True, timeout=300)
    (wheel,) = (scratch / "dist").glob("gateway-*.whl")
    return wheel


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    scratch = tmp_path_factory.mktemp("wheel")
    wheel = _build_wheel(scratch)
    venv = scratch / "venv"
    # The interpreter the project's venv is built on, in a venv of its own: no system site-packages.
    subprocess.run([str(Path(sys.executable).resolve()), "-m", "venv", str(venv)], check=True, timeout=120)
    # pip's cache (warm from `make deps`) keeps this offline-friendly; --no-compile: the first
    # import compiles what it uses instead of pip compiling every module of every dependency.
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-compile", str(wheel)], check=True,
                   capture_output=True, timeout=600)
    work = scratch / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GATEWAY_", "PYTHON", "R_", "VIRTUAL_ENV", "XDG_"))}
    env |= {"PATH": f"{venv / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}", "HOME": str(scratch / "home"),
            "XDG_DATA_HOME": str(scratch / "xdg")}
    (port,) = free_ports(1)
    yield Installed(venv, work, env, port)
    run_dir = work / "site" / "run"
    if (run_dir / stack.SUPERVISORD_PID).exists():
        stack.down(run_dir)  # a failed test's stack: never left running


def test_the_installed_package_is_the_venv_s_not_the_checkout_s(installed: Installed) -> None:
    probe = "import json, sys, gateway; print(json.dumps([gateway.__file__, sys.path]))"
    where, path = json.loads(installed.run(str(installed.venv / "bin" / "python"), "-c", probe).stdout)
    assert Path(where).is_relative_to(installed.venv / "lib"), where
    assert not [entry for entry in path if entry and Path(entry).resolve().is_relative_to(REPO_ROOT)], path


def test_init_register_up_predict_down(installed: Installed) -> None:
    installed.gateway("init", "site")
    expected_class = int(installed.run(str(installed.venv / "bin" / "python"), "-c", TRAIN_IRIS).stdout)
    expected_mpg = float(installed.run("Rscript", "-e", FIT_LM).stdout)
    config = installed.work / "site" / "gateway.toml"
    installed.gateway("register", "iris", "iris.skops", "--sample", "iris.csv", "--config", str(config))
    registered = installed.gateway("register", "mpg", "lm.rds", "--sample", "lm.csv", "--config", str(config))
    # Registering the R model was the first use of R: gatewayr went into the XDG data dir.
    library = Path(installed.env["XDG_DATA_HOME"]) / "gateway" / "rlib" / gatewayr_version()
    assert (library / "gatewayr" / "DESCRIPTION").is_file(), registered.stderr
    assert "installing the gatewayr R package" in registered.stderr
    with config.open("a", encoding="utf-8") as out:
        # user = "": pytest's 0700 temp dirs are out of the service users' reach (conftest.py)
        out.write('\n[models.iris]\nbackend = "python"\n\n[models.mpg]\nbackend = "plumber"\nworkers = 1\n')
    text = config.read_text(encoding="utf-8").replace("[server]\n", f'[server]\nport = {installed.port}\nuser = ""\n'
                                                       'workers = 1\nrun_dir = "run"\n', 1)
    config.write_text(text, encoding="utf-8")
    installed.gateway("up", "--detach", "--config", str(config))
    run_dir = installed.work / "site" / "run"
    supervisord = stack._supervisord_pid(run_dir)
    assert supervisord is not None
    family = procs.family(supervisord)
    try:
        with requests.Session() as http:
            http.trust_env = False
            url = f"http://127.0.0.1:{installed.port}"
            iris = http.post(f"{url}/models/iris/predict", timeout=30,
                             json=[{"sepal_length": 6.3, "sepal_width": 3.3, "petal_length": 6.0, "petal_width": 2.5}])
            assert iris.status_code == 200, iris.text
            assert iris.json()["predictions"] == [expected_class]
            mpg = http.post(f"{url}/models/mpg/predict", json=[{"wt": 2.5, "hp": 110}], timeout=30)
            assert mpg.status_code == 200, mpg.text
            assert mpg.json()["predictions"] == [pytest.approx(expected_mpg, rel=1e-12)]
        # Every program and config of the stack comes from the venv, the XDG library and the run dir.
        for name in ("supervisord.conf", "nginx.conf", "gunicorn.conf.py"):
            assert str(REPO_ROOT) not in (run_dir / name).read_text(encoding="utf-8"), name
        conf = (run_dir / "supervisord.conf").read_text(encoding="utf-8")
        assert f'R_LIBS="{library}"' in conf and f"{installed.venv}/lib/" in conf
    finally:
        installed.gateway("down", "--config", str(config))
    assert not procs.alive(family)
