"""R models for the pool tests, built by R itself through gatewayr::save_model.

Besides the demo models (lm and randomForest), small function models give the failure modes a
test needs on demand: an R error, a slow predict, a worker that dies mid-request.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from gateway.paths import REPO_ROOT
from gateway.register import register_artefact

# Each is `function(newdata, type)`, saved as model.rds with a one-column prototype `x`.
FUNCTION_MODELS = {
    # R's stop() message must reach the client unchanged, and the worker must live on.
    "fragile": 'function(newdata, type) { if (any(newdata$x < 0, na.rm = TRUE)) '
               'stop("x must be non-negative, got ", min(newdata$x)); newdata$x * 2 }',
    # sleeps x seconds where R cannot interrupt it, as a hung native call: only the watchdog frees it
    "slow": "function(newdata, type) { suspendInterrupts(Sys.sleep(newdata$x[1])); newdata$x }",
    # spins in an R loop for x seconds: R's own time limit can stop it (Sys.sleep it cannot)
    "spinning": "function(newdata, type) { until <- Sys.time() + newdata$x[1]; while (Sys.time() < until) NULL; "
                "newdata$x }",
    # x = 999 kills the R process mid-request, as a segfaulting native library would
    "crashy": "function(newdata, type) { if (any(newdata$x == 999)) tools::pskill(Sys.getpid(), 9L); newdata$x }",
}


def r_env() -> dict[str, str]:
    return {**os.environ, "R_LIBS": str(REPO_ROOT / ".rlib")}


def rscript(code: str, *args: str) -> str:
    result = subprocess.run(["Rscript", "-e", code, *args], capture_output=True, text=True, env=r_env(),
                            check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def build_r_store(store: Path) -> Path:
    subprocess.run(["Rscript", str(REPO_ROOT / "demo" / "build_r_models.R"), str(store)], env=r_env(),
                   check=True, capture_output=True, timeout=120)
    for name, source in FUNCTION_MODELS.items():
        rscript(f"gatewayr::save_model({source}, commandArgs(TRUE)[1], '{name}', "
                "sample = data.frame(x = c(0, 2)))", str(store))
    register_artefact(store, "cars", REPO_ROOT / "plumber" / "cars" / "plumber.R", None, "stopping distance")
    return store


def r_predict(store: Path, name: str, rows: list[dict], prob: bool = False, version: str | None = None) -> list:
    """What R's own predict() says for these rows, every double written with 17 digits.

    Written without jsonlite on purpose: it caps doubles at 15 significant digits.
    """
    code = r"""
args <- commandArgs(TRUE)
loaded <- gatewayr::load_model(args[1])
rows <- jsonlite::fromJSON(args[2])
frame <- data.frame(row.names = seq_len(nrow(rows)))
for (col in names(loaded$prototype)) {
  proto <- loaded$prototype[[col]]
  frame[[col]] <- if (is.factor(proto)) factor(rows[[col]], levels = levels(proto)) else as(rows[[col]], class(proto))
}
out <- if (args[3] == "prob") predict(loaded$model, frame, type = "prob") else predict(loaded$model, frame)
if (is.matrix(out)) {
  cat(paste(colnames(out), collapse = "\t"), "\n", sep = "")
  for (i in seq_len(nrow(out))) cat(paste(sprintf("%.17g", out[i, ]), collapse = "\t"), "\n", sep = "")
} else if (is.numeric(out)) {
  cat(sprintf("%.17g", unname(out)), sep = "\n")
} else {
  cat(as.character(out), sep = "\n")
}
"""
    version_dir = store / name / version if version else max(
        (p for p in (store / name).iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    lines = rscript(code, str(version_dir), json.dumps(rows), "prob" if prob else "response").splitlines()
    if prob:
        header = lines[0].split("\t")
        return [dict(zip(header, map(float, line.split("\t")), strict=True)) for line in lines[1:]]
    try:
        return [float(line) for line in lines]
    except ValueError:
        return lines


# R's own predict for a list of requests, independent of gatewayr's predict code: the model is read
# with readRDS, the call is spelled out by the case, and the result is shaped as as.data.frame()
# shapes it. Every double is written with 17 significant digits (jsonlite caps them at 15).
_OWN_PREDICT = r"""
args <- commandArgs(TRUE)
requests <- jsonlite::fromJSON(args[1], simplifyVector = FALSE)
num <- function(x) ifelse(is.na(x), "null", sprintf("%.17g", x))
str <- function(x) vapply(as.character(x), function(s) as.character(jsonlite::toJSON(s, auto_unbox = TRUE)), "")
vec <- function(x) {
  if (is.factor(x)) x <- as.character(x)
  paste0("[", paste(if (is.numeric(x)) num(unname(as.vector(x))) else str(x), collapse = ","), "]")
}
answers <- vapply(requests, function(req) {
  meta <- jsonlite::fromJSON(file.path(req$dir, "model.json"), simplifyVector = FALSE)
  for (pkg in names(meta$framework$packages)) loadNamespace(pkg)
  model <- readRDS(file.path(req$dir, "model.rds"))
  frame <- data.frame(row.names = seq_along(req$rows))
  for (spec in meta$inputs) {
    values <- lapply(req$rows, function(row) row[[spec$name]])
    frame[[spec$name]] <- switch(spec$type, double = vapply(values, as.numeric, 0),
                                 integer = vapply(values, as.integer, 0L),
                                 factor = factor(vapply(values, as.character, ""), levels = unlist(spec$levels)),
                                 vapply(values, as.character, ""))
  }
  r <- req$r
  out <- if (is.null(r$type)) predict(model, newdata = frame) else predict(model, newdata = frame, type = r$type)
  if (!is.null(r$part)) out <- out[[r$part]]
  if (!is.null(r$two_classes)) out <- stats::setNames(data.frame(1 - out, out), unlist(r$two_classes))
  if (is.list(out) && !is.data.frame(out)) out <- as.data.frame(out)
  if (is.matrix(out) && ncol(out) == 1) out <- out[, 1]
  if (is.matrix(out)) out <- as.data.frame(out, optional = TRUE)
  if (!is.data.frame(out)) return(paste0("{\"values\":", vec(out), "}"))
  columns <- vapply(names(out), function(name) paste0(str(name), ":", vec(out[[name]])), "")
  paste0("{\"columns\":{", paste(columns, collapse = ","), "}}")
}, "")
cat("[", paste(answers, collapse = ","), "]", sep = "")
"""


def r_own_predictions(requests: list[dict], scratch: Path) -> list[list]:
    """Each {dir, rows, r} → R's own predictions, one per row: a value, or an object per row."""
    path = scratch / "own_predict_requests.json"
    path.write_text(json.dumps(requests), encoding="utf-8")
    answers = json.loads(rscript(_OWN_PREDICT, str(path)))
    out = []
    for answer in answers:
        if "values" in answer:
            out.append(answer["values"])
        else:
            columns = answer["columns"]
            out.append([dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)])
    return out


def add_light_mtcars_version(store: Path) -> None:
    """Version 2 of mtcars: the same inputs, fitted on light cars only, so its predictions differ
    from version 1's (rollout and live-reload tests tell the versions apart by them)."""
    rscript(
        "cars <- mtcars; cars$cyl <- as.integer(cars$cyl); "
        "cars$am <- factor(ifelse(cars$am == 1, 'manual', 'auto'), levels = c('auto', 'manual')); "
        "light <- cars[cars$wt < 3.5, ]; "
        "gatewayr::save_model(lm(mpg ~ wt + hp + cyl + am, data = light), commandArgs(TRUE)[1], 'mtcars', "
        "sample = cars[c('wt', 'hp', 'cyl', 'am')])",
        str(store),
    )
