"""`gateway register NAME --pins-board DIR --pin PIN[@VERSION]`: a vetiver model pinned to a
folder board (`board_folder`), by vetiver for R or for Python.

A folder board holds `<board>/<pin>/<version>/data.txt` (YAML: `file`, `type`, `description`,
`user`) beside the pinned file; versions are named `<created>-<hash>` (`20231201T120000Z-abcde`),
so the newest sorts last. vetiver for R pins an .rds holding `list(model, prototype)` (older
versions: `ptype`, `required_pkgs`) with `required_pkgs` in `user`; vetiver for Python pins a
joblib file with `user.vetiver_meta` = {prototype (a JSON row), required_pkgs}.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from gateway.errors import ConfigError
from gateway.register import features_only, load_python_file, store_python_file
from gateway.rscript import run_rscript

_VERSION = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]+")


@dataclass(frozen=True)
class Pin:
    """One version of a pin: its directory, data.txt, and the pinned file."""

    name: str
    version: str
    directory: Path
    meta: dict[str, Any]
    file: Path

    @property
    def where(self) -> str:
        return f"pin {self.name}@{self.version}"


def parse_pin(spec: str) -> tuple[str, str | None]:
    """`NAME[@VERSION]` → (name, version or None for the newest)."""
    name, _, version = spec.partition("@")
    if not name or "/" in name or name in (".", ".."):
        raise ConfigError(f"--pin {spec!r}: expected a pin name, optionally with @VERSION")
    return name, version or None


def versions(board: Path, name: str) -> list[str]:
    """The pin's versions, oldest first (a pin written unversioned has one)."""
    pin_dir = board / name
    found = [p.name for p in pin_dir.iterdir() if p.is_dir() and (p / "data.txt").is_file()]
    return sorted(found, key=lambda v: (_VERSION.fullmatch(v) is not None, v))


def find_pin(board: Path, spec: str) -> Pin:
    """The pin version `spec` names; ConfigError naming what is there when it is not."""
    if not board.is_dir():
        raise ConfigError(f"pins board {board} is not a directory")
    name, version = parse_pin(spec)
    if not (board / name).is_dir():
        pins = sorted(p.name for p in board.iterdir() if p.is_dir() and not p.name.startswith("."))
        raise ConfigError(f"pin {name!r} not found on board {board}; its pins: {', '.join(pins) or 'none'}")
    stored = versions(board, name)
    if not stored:
        raise ConfigError(f"pin {name!r} on board {board} has no version (no <version>/data.txt)")
    if version is None:
        version = stored[-1]
    elif version not in stored:
        raise ConfigError(f"pin {name!r} has no version {version!r} on board {board}; its versions: "
                          f"{', '.join(stored)}")
    directory = board / name / version
    try:
        meta = yaml.safe_load((directory / "data.txt").read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"pin {name}@{version}: data.txt is not YAML ({exc})") from None
    files = meta.get("file")
    file = files[0] if isinstance(files, list) and len(files) == 1 else files
    if not isinstance(file, str) or Path(file).name != file or not (directory / file).is_file():
        raise ConfigError(f"pin {name}@{version}: data.txt names the file {files!r}, which is not in {directory}")
    return Pin(name, version, directory, meta, directory / file)


def prototype_frame(prototype: str | dict[str, Any] | None, where: str) -> pd.DataFrame | None:
    """vetiver-python's prototype (one example row as JSON) as a one-row frame: int → integer,
    float → double, str → string, bool → logical. ConfigError for a value of another kind."""
    if prototype is None:
        return None
    row = json.loads(prototype) if isinstance(prototype, str) else prototype
    if not isinstance(row, dict) or not row:
        raise ConfigError(f"{where}: the prototype is not a row of named values: {str(prototype)[:200]}")
    for column, value in row.items():
        if not isinstance(value, bool | int | float | str):
            raise ConfigError(f"{where}: prototype column {column!r} holds {type(value).__name__} "
                              f"{str(value)[:80]}; the gateway serves numbers, text and booleans")
    return pd.DataFrame([row])


def python_vetiver_meta(user: dict[str, Any]) -> tuple[Any, list[str]]:
    """(prototype, required_pkgs) from a Python pin's data.txt `user`: vetiver 0.2 nests them
    under `vetiver_meta`; vetiver before 2023 kept them in `user`, the prototype named `ptype`."""
    meta = user.get("vetiver_meta") or user
    prototype = meta.get("prototype") if meta.get("prototype") is not None else meta.get("ptype")
    return prototype, [str(p) for p in meta.get("required_pkgs") or ()]


def import_pin(store_root: Path, name: str, board: Path, spec: str, *, sample: Path | None = None,
               description: str = "", trust: bool = False) -> str:
    """Register a vetiver pin as a new version; returns the version."""
    pin = find_pin(Path(board).resolve(), spec)
    kind = str(pin.meta.get("type", ""))
    if not description:  # vetiver's own, and where it came from
        description = " ".join(filter(None, [str(pin.meta.get("description") or ""), f"(from {pin.where})"]))
    if kind == "rds":
        return _import_r(store_root, name, pin, sample, description)
    if kind == "joblib":
        return _import_python(store_root, name, pin, sample, description, trust)
    raise ConfigError(f"{pin.where}: pin type {kind!r} is not a vetiver model (vetiver pins an rds from R, "
                      "a joblib from Python)")


def _import_python(store_root: Path, name: str, pin: Pin, sample: Path | None, description: str,
                   trust: bool) -> str:
    prototype, required = python_vetiver_meta(pin.meta.get("user") or {})
    frame = pd.read_csv(sample) if sample is not None else prototype_frame(prototype, pin.where)
    if frame is None:
        raise ConfigError(f"{pin.where}: the pin has no prototype; pass --sample CSV (the model's input columns)")
    packages = {}
    for package in required:
        try:
            packages[str(package)] = package_version(str(package))
        except PackageNotFoundError:
            raise ConfigError(f"{pin.where} needs the Python package {package!r}, which is not installed "
                              f"here: pip install {package}") from None
    if not trust:  # said before loading: joblib.load runs the pickle's code
        raise ConfigError(f"{pin.where}: a vetiver Python pin is a pickle ({pin.file.name}): loading it, here and "
                          "to serve it, runs whatever code it holds. If you trust the board, register again "
                          "with --trust (and serve it with trusted = true)")
    estimator, trusted = load_python_file(pin.file, "joblib", trust=trust)
    frame = features_only(estimator, frame, None)
    return store_python_file(store_root, name, pin.file, "joblib", estimator, frame, description, trusted,
                             packages=packages)


# R's side: the pinned list's model (unbundled when vetiver bundled it) saved by
# gatewayr::save_model with a sample: the --sample CSV, the prototype's rows, else one row made
# from the zero-row prototype (a number 0, a factor's first level, "" ...), so the prototype's
# column types become the schema. Exit 3 with the message alone: a refusal.
_IMPORT_RDS = r"""
args <- commandArgs(trailingOnly = TRUE)
tryCatch({
  pinned <- readRDS(args[1])
  if (!is.list(pinned) || is.null(pinned$model)) stop("the pinned object is not a vetiver model (a list with `model`)")
  model <- pinned$model
  if (inherits(model, "bundle")) {
    if (!requireNamespace("bundle", quietly = TRUE)) {
      stop("the model is bundled (bundle::bundle); install the R package 'bundle' to unbundle it")
    }
    model <- bundle::unbundle(model)
  }
  proto <- if (!is.null(pinned$prototype)) pinned$prototype else pinned$ptype
  one <- function(x) {
    if (is.factor(x)) return(factor(levels(x)[1], levels = levels(x)))
    if (inherits(x, "POSIXct")) return(as.POSIXct("2024-01-01 00:00:00", tz = "UTC"))
    if (inherits(x, "Date")) return(as.Date("2024-01-01"))
    if (is.integer(x)) return(0L)
    if (is.double(x)) return(0)
    if (is.logical(x)) return(FALSE)
    if (is.character(x)) return("")
    stop(sprintf("prototype column has class %s, which the gateway cannot serve", class(x)[1]))
  }
  sample <- if (nzchar(args[6])) {
    utils::read.csv(args[6], stringsAsFactors = TRUE, check.names = FALSE)
  } else if (is.data.frame(proto) && nrow(proto) > 0) {
    as.data.frame(proto)
  } else if (is.data.frame(proto) && ncol(proto) > 0) {
    as.data.frame(lapply(proto, one), check.names = FALSE, stringsAsFactors = FALSE)
  } else stop("the pin has no prototype; pass --sample CSV (the model's input columns)")
  packages <- unique(c(strsplit(args[5], ",", fixed = TRUE)[[1]], as.character(unlist(pinned$required_pkgs))))
  missing <- packages[!vapply(packages, requireNamespace, logical(1), quietly = TRUE)]
  if (length(missing) > 0) stop(sprintf("the pin needs the R package(s) %s, not installed here (Debian: %s)",
    paste(missing, collapse = ", "), paste0("r-cran-", tolower(missing), collapse = " ")))
  dir <- gatewayr::save_model(model, args[2], args[3], sample = sample, description = args[4], packages = packages)
  cat(basename(dir))
}, error = function(e) { cat(conditionMessage(e), file = stderr()); quit(status = 3) })
"""


def _import_r(store_root: Path, name: str, pin: Pin, sample: Path | None, description: str) -> str:
    user = pin.meta.get("user") or {}
    required = user.get("required_pkgs") or []
    if isinstance(required, str):
        required = [required]
    args = [str(pin.file), str(store_root), name, description, ",".join(map(str, required)), str(sample or "")]
    result = run_rscript(["-e", _IMPORT_RDS, *args], refusal=f"cannot import {pin.where} as '{name}'")
    return result.strip().splitlines()[-1]
