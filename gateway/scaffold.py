"""`gateway init DIR`: a commented config, an empty store and a pointer to the docs, to start from."""

from __future__ import annotations

import os
from pathlib import Path

from gateway.errors import ConfigError

CONFIG = """\
# A gateway config: `gateway doctor --config {config}` checks this host against it,
# `gateway up --config {config}` starts the stack. Every key is explained in the
# comments of gateway/settings.py;
# environment overrides: GATEWAY_SERVER__PORT=9000 etc. Relative paths are relative to this file.

[server]
# port = 8080            # the only public listener (NGINX)
# host = "127.0.0.1"     # its address; 0.0.0.0 to serve other hosts
# workers = 2            # Gunicorn worker processes (each loads the Python models)
# threads = 4            # threads per Gunicorn worker
# timeout_s = 120        # Gunicorn timeout: above every model's timeout_s
# run_dir = ".run"       # rendered configs, logs, sockets
# api_keys_file = ""     # `gateway keys add` writes it; empty: no access control
# metrics = "open"       # GET /metrics for Prometheus; "closed" answers 404

[store]
path = "store"           # `gateway register NAME FILE` writes models here

# One section per model; the name is the URL's /models/<name>/predict.
# [models.iris]
# backend = "python"     # python (scikit-learn), plumber (R worker pools), rpy2 (R in-process), onnx
# version = "latest"
# description = "iris species from flower measurements"
# workers = 2            # R pool size (plumber backend)
# timeout_s = 30
"""

README = """\
This directory was made by `gateway init`: gateway.toml (the config), store/ (the model store).

  gateway doctor --config gateway.toml      what this host still needs, with the fix for each
  gateway register NAME model.skops --sample train.csv --config gateway.toml
  gateway up --config gateway.toml

`gateway` not found? From the gateway's checkout, after `make run` or `make deps`:
  export PATH="$PWD/.venv/bin:$PATH"
or, in every shell: mkdir -p ~/.local/bin && ln -sf "$PWD/.venv/bin/gateway" ~/.local/bin/gateway
From a wheel: pipx install gateway-*.whl (or pip install it into a venv and use its bin/).

Docs, in the gateway's source tree: docs/install.md (wheel, R library), docs/operations.md
(commands, `gateway doctor`), docs/models.md (backends), docs/security.md (API keys, service users).
"""


def init_dir(directory: Path) -> Path:
    """Write DIR/gateway.toml, DIR/store/ and DIR/README.txt; the config's path.

    Raises ConfigError when DIR already has a gateway.toml: a user's config is never overwritten.
    """
    config = directory / "gateway.toml"
    if config.exists():
        raise ConfigError(f"{config} exists; gateway init does not overwrite a config")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "store").mkdir(mode=0o750, exist_ok=True)
    with os.fdopen(os.open(config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644), "w", encoding="utf-8") as out:
        out.write(CONFIG.format(config=config))
    readme = directory / "README.txt"
    if not readme.exists():
        readme.write_text(README, encoding="utf-8")
    return config
