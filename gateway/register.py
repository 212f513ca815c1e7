"""Register models into the store: Python estimators, saved artefacts, R models, Plumber scripts."""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import pandas as pd

from gateway.backends import KINDS
from gateway.drift_reference import reference_from_frame
from gateway.errors import ConfigError
from gateway.integrity import outside_links, tree_sha256
from gateway.meta import InputSpec, ModelMeta
from gateway.names import name_problem
from gateway.rscript import run_rscript
from gateway.schema_infer import infer_inputs, infer_outputs
from gateway.store import ModelStore, sha256_of


def register_model(
    estimator: Any,
    name: str,
    sample: pd.DataFrame,
    *,
    store: str | Path | None = None,
    description: str = "",
    fmt: str = "skops",
    targets: Sequence[str] | None = None,
    target: str | None = None,
) -> str:
    """Save a fitted estimator (or callable) as a new immutable version; returns the version.

    `sample` is a slice of the training data: it fixes the input schema (names, dtypes,
    categorical levels) and is predicted once here, so a broken model fails now, not in serving.
    A column the estimator was not fitted on (the target, say) is refused unless `target`
    names it, which drops it. skops (the default) loads without running code, and the types it
    does not trust by default that this estimator holds are recorded as trusted for this
    artefact (and only while its sha256 matches); "joblib" is for objects skops cannot save and
    must be served with `trusted = true`. A backend kind with its own format takes its name
    (fmt="onnx": converted with skl2onnx, served by backend = "onnx"). `targets` names the
    outputs of a multi-output model (the training frame's y columns), which it answers keyed by
    them ("0", "1", ... without).
    """
    saver = KINDS.saver(fmt)
    if fmt not in ("skops", "joblib") and saver is None:
        formats = ["skops", "joblib", *(k.saver.fmt for k in KINDS if k.saver is not None)]
        raise ValueError(f"fmt must be one of {', '.join(map(repr, formats))}, not {fmt!r}")
    sample = features_only(estimator, sample, target)
    if saver is not None and getattr(estimator, "feature_names_in_", None) is not None:
        sample = sample[[str(c) for c in estimator.feature_names_in_]]  # the converted model's column order
    outputs = infer_outputs(estimator, sample, targets) if saver is None else {}

    def write(directory: Path, version: str) -> None:
        artefact = directory / f"model.{fmt}"
        trusted: list[str] = []
        if saver is not None:
            _write_python_meta(directory, name, version, artefact, sample,
                               saver.save(estimator, sample, artefact), description)
            return
        if fmt == "skops":
            import skops.io as sio

            sio.dump(estimator, artefact)
            trusted = sio.get_untrusted_types(file=artefact)  # the user's own estimator holds them
        else:
            import joblib

            joblib.dump(estimator, artefact)
        _write_python_meta(directory, name, version, artefact, sample, outputs, description, trusted)

    return ModelStore(_store_root(store)).add_version(name, write)


def register_artefact(
    store_root: Path, name: str, path: Path, sample: Path | None, description: str = "", *,
    trust: bool = False, target: str | None = None,
) -> str:
    """`gateway register`: a .skops/.joblib file, an R .rds, or a Plumber script (its plumber.R,
    its entrypoint.R, or its directory, as `plumb(dir)` takes it).

    `target` names a column of the sample to leave out (the training target). A .skops file
    made elsewhere that holds types skops does not trust by default is refused (UntrustedTypes,
    one line per type) unless `trust`, after the user reviewed them; so is a .joblib file (a
    pickle), since reading it runs its code."""
    if problem := name_problem(name):  # before R or a copy runs, not only when the store is touched
        raise ConfigError(problem)
    path = Path(path).resolve()
    if not path.exists():
        raise ConfigError(f"{path} does not exist")
    if path.is_dir():
        return _register_script(store_root, name, _plumb_dir_entry(path), sample, description)
    suffix = path.suffix.lower()
    if suffix in (".skops", ".joblib"):
        return _register_python_file(store_root, name, path, _need_sample(sample, path), description,
                                     trust=trust, target=target)
    if suffix == ".rds":
        return _register_rds(store_root, name, path, _need_sample(sample, path), description, target)
    if suffix == ".r":
        return _register_script(store_root, name, path, sample, description)
    saver = KINDS.saver(suffix.lstrip("."))
    if saver is not None and saver.adopt is not None:
        return _register_adopted(store_root, name, path, _need_sample(sample, path), description, saver.adopt,
                                 target)
    others = "".join(f", .{k.saver.fmt}" for k in KINDS if k.saver is not None and k.saver.adopt is not None)
    raise ConfigError(
        f"{path.name}: unknown artefact type; expected .skops, .joblib{others}, .rds, a plumber .R or a script "
        "directory"
    )


def _plumb_dir_entry(directory: Path) -> Path:
    """The file plumb(dir) starts from: entrypoint.R (any case), else plumber.R."""
    for pattern in (r"entrypoint\.r", r"plumber\.r"):
        found = sorted(p for p in directory.iterdir() if p.is_file() and re.fullmatch(pattern, p.name, re.IGNORECASE))
        if found:
            return found[0]
    raise ConfigError(f"{directory} has neither an entrypoint.R nor a plumber.R (what plumb(dir) serves), nor an "
                      "MLmodel file (an MLflow model)")


class UntrustedTypes(ConfigError):
    """A .skops file holds types skops does not trust by default and the user did not --trust."""


def _register_python_file(store_root: Path, name: str, path: Path, sample: Path, description: str, *,
                          trust: bool, target: str | None) -> str:
    fmt = path.suffix.lower().lstrip(".")
    estimator, trusted = load_python_file(path, fmt, trust=trust)
    frame = features_only(estimator, pd.read_csv(sample), target)
    return store_python_file(store_root, name, path, fmt, estimator, frame, description, trusted)


def load_python_file(path: Path, fmt: str, *, trust: bool) -> tuple[Any, list[str]]:
    """A .skops or pickle (joblib) file made elsewhere, loaded only once trusted: the estimator
    and the skops types trusted for it. UntrustedTypes (one line per type) for a .skops file
    holding types skops does not trust by default, and for any pickle, unless `trust`."""
    trusted: list[str] = []
    if fmt == "skops":
        import skops.io as sio

        # Nothing of the file is loaded before the user has reviewed the types it holds.
        trusted = sio.get_untrusted_types(file=path)
        if trusted and not trust:
            listed = "".join(f"\n  {kind}" for kind in trusted)
            raise UntrustedTypes(
                f"{path.name} holds {len(trusted)} type(s) skops does not trust by default; loading "
                f"them can run their code. Review them, then register again with --trust:{listed}"
            )
        return sio.load(path, trusted=trusted), trusted
    if not trust:
        raise UntrustedTypes(
            f"{path.name} is a pickle (joblib): loading it, here to read its outputs and later to "
            "serve it, runs whatever code it holds. If you trust where it came from, register "
            "again with --trust (and serve it with trusted = true), or save the model with skops"
        )
    import joblib

    return joblib.load(path), trusted


def store_python_file(
    store_root: Path, name: str, path: Path, fmt: str, estimator: Any, frame: pd.DataFrame, description: str,
    trusted: list[str], *, inputs: Sequence[InputSpec] | None = None, packages: Mapping[str, str] | None = None,
) -> str:
    """Copy a loaded .skops/.joblib file into a new version, its outputs read by predicting on
    `frame`. `inputs` replaces the schema inferred from `frame` (an importer that was told it);
    `packages` (name → version) joins model.json's `framework`."""
    try:
        outputs = infer_outputs(estimator, frame)
    except Exception as exc:  # the user's model, on the user's sample: any error is theirs to fix
        raise ConfigError(f"model {name!r} cannot predict on its sample ({', '.join(map(str, frame.columns))}): "
                          f"{type(exc).__name__}: {' '.join(str(exc).split())}") from None

    def write(directory: Path, version: str) -> None:
        artefact = directory / f"model.{fmt}"
        shutil.copyfile(path, artefact)
        _write_python_meta(directory, name, version, artefact, frame, outputs, description, trusted,
                           inputs=inputs, packages=packages)

    return ModelStore(store_root).add_version(name, write)


def _register_adopted(store_root: Path, name: str, path: Path, sample: Path, description: str,
                      adopt: Any, target: str | None) -> str:
    """A file in a backend kind's own format (model.onnx): the kind checks it against the sample."""
    frame = pd.read_csv(sample)
    if target is not None:
        if target not in frame.columns:
            raise ConfigError(f"target column {target!r} is not in the sample; its columns: "
                              f"{', '.join(map(str, frame.columns))}")
        frame = frame.drop(columns=target)

    def write(directory: Path, version: str) -> None:
        artefact = directory / f"model{path.suffix.lower()}"
        _write_python_meta(directory, name, version, artefact, frame, adopt(path, frame, artefact), description)

    return ModelStore(store_root).add_version(name, write)


# R's side of `gateway register NAME model.rds`: gatewayr::save_model in one line of R. An error
# of save_model (the model cannot predict on its sample, a response column in it...) exits 3
# with its message alone on stderr.
_SAVE_RDS = (
    "args <- commandArgs(trailingOnly = TRUE); "
    "tryCatch({"
    "sample <- utils::read.csv(args[4], stringsAsFactors = TRUE, check.names = FALSE); "
    "sample[] <- lapply(sample, function(x) if (is.integer(x)) as.double(x) else x); "
    "target <- if (nzchar(args[6])) args[6] else NULL; "
    "dir <- gatewayr::save_model(readRDS(args[1]), args[2], args[3], sample = sample, "
    "description = args[5], target = target); cat(basename(dir))"
    "}, error = function(e) { cat(conditionMessage(e), file = stderr()); quit(status = 3) })"
)


def _register_rds(
    store_root: Path, name: str, path: Path, sample: Path, description: str, target: str | None = None
) -> str:
    """Delegate to the R package's save_model, so R and the shell write identical model.json.

    save_model runs the model's predict on the sample's first rows in the R that serves it, and
    finds the packages the model needs among the installed ones. CSV does not keep R's
    integer/double distinction (write.csv writes the double 110 as `110`), so whole-number
    columns are read as double: declaring them integer would refuse 110.5. write.csv's row-names
    column (an empty header) is dropped by save_model.
    """
    args = [str(path), str(store_root), name, str(sample), description, target or ""]
    result = run_rscript(["-e", _SAVE_RDS, *args], refusal=f"cannot register {path.name} as '{name}'")
    return result.strip().splitlines()[-1]  # model.json with drift's reference: R writes it too


def _register_script(store_root: Path, name: str, script: Path, sample: Path | None, description: str) -> str:
    """Copy the script with the files beside it (scripts read them) into a new version, and
    record the hash of that whole directory (R checks it before running the script).

    Refused (ConfigError, one line) when the script needs an R package that is not installed.
    """
    from gateway.script_deps import check_script_packages

    frame = pd.read_csv(sample) if sample else None
    inputs = infer_inputs(frame) if frame is not None else ()
    check_script_packages({name: script})
    store = Path(store_root).resolve()
    if links := outside_links(script.parent):
        raise ConfigError(f"{script.parent} holds symlinks that point outside it, which would copy "
                          f"files the script's directory does not own: {'; '.join(links)}")

    def write(directory: Path, version: str) -> None:
        for entry in script.parent.iterdir():
            # The store often sits beside the script (the default layout): copying it into one
            # of its own versions would recurse forever.
            if store.is_relative_to(entry.resolve()):
                continue
            target = directory / entry.name
            if entry.is_dir():
                shutil.copytree(entry, target)
            else:
                shutil.copy2(entry, target)
        meta = ModelMeta(
            name=name, version=version, language="r", format="plumber", artefact=script.name,
            inputs=tuple(spec for spec in inputs), outputs={}, sha256=sha256_of(directory / script.name),
            created_at=_now(), framework={"r": _r_version()}, description=description,
            tree_sha256=tree_sha256(directory),
            reference=reference_from_frame(frame, inputs) if frame is not None else None,
        )
        (directory / "model.json").write_text(json.dumps(meta.to_json(), indent=2), encoding="utf-8")

    return ModelStore(store_root).add_version(name, write)


def features_only(estimator: Any, sample: pd.DataFrame, target: str | None) -> pd.DataFrame:
    """The sample without `target`; ConfigError for a column the estimator was not fitted on
    (a target left in would become a required input of every request)."""
    if target is not None:
        if target not in sample.columns:
            raise ConfigError(f"target column {target!r} is not in the sample; its columns: "
                              f"{', '.join(map(str, sample.columns))}")
        sample = sample.drop(columns=target)
    fitted = getattr(estimator, "feature_names_in_", None)
    if fitted is not None:
        extra = [str(c) for c in sample.columns if c not in set(fitted)]
        if extra:
            raise ConfigError(
                f"the sample has column(s) the estimator was not fitted on: {', '.join(extra)}; "
                f"drop them, or name the target column (target= in register_model, --target in "
                "gateway register)"
            )
        return sample
    expected = getattr(estimator, "n_features_in_", None)
    if expected is not None and len(sample.columns) == expected + 1:
        raise ConfigError(
            f"the sample has {len(sample.columns)} columns but the estimator was fitted on {expected} "
            "features: is the target column in it? name it (target= in register_model, --target in "
            "gateway register)"
        )
    return sample


def _write_python_meta(
    directory: Path, name: str, version: str, artefact: Path, sample: pd.DataFrame,
    outputs: dict[str, Any], description: str, trusted: list[str] | None = None, *,
    inputs: Sequence[InputSpec] | None = None, packages: Mapping[str, str] | None = None,
) -> None:
    inputs = tuple(inputs) if inputs is not None else infer_inputs(sample)
    meta = ModelMeta(
        name=name, version=version, language="python", format=artefact.suffix.lstrip("."),
        artefact=artefact.name, inputs=inputs, outputs=outputs,
        sha256=sha256_of(artefact), created_at=_now(),
        framework={
            "python": platform.python_version(),
            "sklearn": package_version("scikit-learn"),
            "gateway": package_version("gateway"),
            **(packages or {}),
        },
        description=description,
        trusted_types=tuple(trusted or ()),
        skops_types_recorded=artefact.suffix == ".skops",  # every skops path above scanned the file
        reference=reference_from_frame(sample, inputs),
    )
    (directory / "model.json").write_text(json.dumps(meta.to_json(), indent=2), encoding="utf-8")


def _store_root(store: str | Path | None) -> Path:
    if store is not None:
        return Path(store)
    from gateway.settings import load_settings

    config = os.environ.get("GATEWAY_CONFIG") or ("gateway.toml" if Path("gateway.toml").exists() else None)
    return load_settings(config).store_path


def _need_sample(sample: Path | None, path: Path) -> Path:
    if sample is None:
        raise ConfigError(f"registering {path.name} needs --sample CSV (a slice of the training data)")
    return sample


def _r_version() -> str:
    try:
        return run_rscript(["-e", "cat(as.character(getRversion()))"]).strip()
    except (OSError, ConfigError):
        return "unknown"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
