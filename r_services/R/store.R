# The model store: `<store>/<name>/<version>/` with model.rds and model.json, versions immutable.

# sha256 hex digest of a file, through coreutils (base R has no sha256).
sha256_file <- function(path) {
  out <- system2("sha256sum", shQuote(path), stdout = TRUE)
  strsplit(out[[1]], " ", fixed = TRUE)[[1]][[1]]
}

check_model_name <- function(name) {
  if (!is.character(name) || length(name) != 1 || !grepl("^[A-Za-z0-9][A-Za-z0-9_.-]*$", name)) {
    stop(sprintf(
      "model name %s is not usable as a directory: use letters, digits, '_', '.' or '-', starting with a letter or digit",
      deparse(name)
    ), call. = FALSE)
  }
}

# The next free version number under a model's directory (1 for the first).
next_version <- function(model_dir) {
  entries <- list.files(model_dir, all.files = FALSE)
  numbers <- suppressWarnings(as.integer(entries[grepl("^[0-9]+$", entries)]))
  max(c(0L, numbers), na.rm = TRUE) + 1L
}

#' Save a model as a new immutable version in the store.
#'
#' Checks what it saves: the model must predict on the first rows of `sample` (in this R, with
#' the packages it needs loaded), and `sample` must hold predictors only. model.json records the
#' inputs (from `sample`), the outputs (classes of a classifier), the packages whose predict
#' method serves the model (found among installed packages even when not attached) and, in
#' `outputs`, the values `params.type` may take (`methods`), R's default (`default_method`) and
#' the gateway's aliases among them (`method_aliases`; see [model_families]).
#'
#' @param model a fitted model (lm, glm, rpart, nnet::multinom, MASS::lda, mgcv::gam,
#'   randomForest, ... anything with a predict method) or a function(newdata, type).
#' @param store the store's root directory.
#' @param name the model's name (a directory under the store).
#' @param sample a data.frame with the predictor columns (a slice of the training data): it
#'   fixes the inputs schema. A first column with an empty name (row names, as write.csv()
#'   writes them) is dropped.
#' @param description free text shown in the gateway's metadata.
#' @param outputs NULL to derive, or list(kind = "classification", classes = ...) etc.
#' @param target NULL, or the name of a column of `sample` to leave out (the training target).
#' @param packages names of R packages the model needs besides those its predict method comes
#'   from (vetiver's `required_pkgs`): each must load here; recorded with its version and loaded
#'   before the model serves.
#' @return the new version directory (its basename is the version).
#' @examples
#' \donttest{
#' fit <- lm(mpg ~ wt + hp, data = mtcars)
#' dir <- save_model(fit, tempfile("store-"), "mtcars", sample = mtcars, target = "mpg")
#' jsonlite::fromJSON(file.path(dir, "model.json"))$outputs
#' }
save_model <- function(model, store, name, sample, description = "", outputs = NULL, target = NULL,
                       packages = character(0)) {
  check_model_name(name)
  sample <- prepare_sample(model, name, sample, target)
  inputs <- infer_inputs(sample)
  framework <- framework_info(model, packages)
  rows <- sample[seq_len(min(5L, nrow(sample))), , drop = FALSE]
  rownames(rows) <- NULL
  prediction <- check_predicts(model, name, rows)
  outputs <- infer_outputs(model, outputs, prediction)
  classes <- if (identical(outputs$kind, "classification")) as.character(unlist(outputs$classes)) else NULL
  outputs <- with_types(outputs, find_types(model, rows, classes))
  model_dir <- file.path(store, name)
  # The store is private to its owner: 0700 directories, 0600 files, from creation on.
  old_umask <- Sys.umask("077")
  on.exit(Sys.umask(old_umask), add = TRUE)
  dir.create(model_dir, recursive = TRUE, showWarnings = FALSE)
  Sys.chmod(c(store, model_dir), "0700", use_umask = FALSE)
  # Hidden scratch directory beside the versions: readers skip it, the rename publishes it whole.
  tmp <- tempfile(pattern = ".tmp-", tmpdir = model_dir)
  dir.create(tmp)
  on.exit(unlink(tmp, recursive = TRUE), add = TRUE)
  saveRDS(model, file.path(tmp, "model.rds"))
  sha <- sha256_file(file.path(tmp, "model.rds"))
  created_at <- format(Sys.time(), "%Y-%m-%dT%H:%M:%SZ", tz = "UTC")
  for (attempt in 1:100) {
    version <- next_version(model_dir)
    meta <- list(
      name = name, version = as.character(version), language = "r", format = "rds",
      artefact = "model.rds", description = description, inputs = inputs, outputs = outputs,
      sha256 = sha, created_at = created_at, framework = framework,
      reference = drift_reference(sample, inputs)
    )
    writeLines(to_json_object(meta, pretty = TRUE), file.path(tmp, "model.json"), useBytes = TRUE)
    target <- file.path(model_dir, version)
    # Another writer may have taken this number meanwhile: then try the next one.
    if (!file.exists(target) && suppressWarnings(file.rename(tmp, target))) return(target)
    if (!file.exists(target)) stop(sprintf("could not move %s to %s", tmp, target), call. = FALSE)
  }
  stop(sprintf("could not allocate a new version for model '%s' in %s", name, store), call. = FALSE)
}

#' Load a stored version: its metadata, the model, and the zero-row input prototype.
#'
#' Fails loudly (at start-up, not on the first request) when model.rds is not the file
#' model.json describes, or a package the model needs is not installed.
#' @param dir a version directory, `<store>/<name>/<version>`.
#' @return list(meta, model, prototype, inputs, dir).
load_model <- function(dir) {
  meta_path <- file.path(dir, "model.json")
  if (!file.exists(meta_path)) stop(sprintf("%s does not exist: is %s a model version directory?", meta_path, dir), call. = FALSE)
  meta <- jsonlite::fromJSON(meta_path, simplifyVector = FALSE)
  artefact <- file.path(dir, meta$artefact %||% "model.rds")
  if (!file.exists(artefact)) stop(sprintf("the artefact %s named by %s is missing", artefact, meta_path), call. = FALSE)
  sha <- sha256_file(artefact)
  if (!identical(sha, meta$sha256)) {
    stop(sprintf(
      "%s has sha256 %s but model.json records %s: the artefact changed after it was saved; save a new version with save_model() instead",
      artefact, sha, format(meta$sha256 %||% "nothing")
    ), call. = FALSE)
  }
  for (pkg in names(meta$framework$packages)) {
    if (!requireNamespace(pkg, quietly = TRUE)) {
      stop(sprintf("model '%s' needs the R package '%s' (saved with version %s), which is not installed",
                   meta$name, pkg, meta$framework$packages[[pkg]]), call. = FALSE)
    }
  }
  model <- readRDS(artefact)
  # A model.json written before packages were searched for (an .rds registered from the shell
  # recorded none): find and load them now, or predict has no method to dispatch to.
  if (!is.function(model) && is.null(predict_method(model))) framework_packages(model)
  list(
    meta = meta,
    model = model,
    prototype = prototype_frame(meta$inputs),
    inputs = read_inputs(meta$inputs),
    dir = normalizePath(dir)
  )
}

# sha256 of a `sha256sum`-style manifest ("<hex>  <relative path>\n", sorted bytewise) of every
# file under dir but the top-level model.json: the same digest as gateway.integrity.tree_sha256.
tree_sha256 <- function(dir) {
  files <- list.files(dir, recursive = TRUE, all.files = TRUE, no.. = TRUE)
  files <- sort(setdiff(files, "model.json"), method = "radix")
  hashes <- vapply(file.path(dir, files), sha256_file, character(1), USE.NAMES = FALSE)
  manifest <- tempfile()
  on.exit(unlink(manifest))
  writeBin(charToRaw(enc2utf8(paste0(hashes, "  ", files, "\n", collapse = ""))), manifest)
  sha256_file(manifest)
}

#' Refuse to run a registered script whose directory changed after registration.
#'
#' A script registered with `gateway register` has a model.json beside it recording the hash of
#' its whole directory (it sources and reads the files there); a script named by path in the
#' config has none and runs as written.
#' @param script path to the user's plumber.R.
#' @noRd
check_script_dir <- function(script) {
  path <- normalizePath(script, mustWork = TRUE)
  dir <- if (dir.exists(path)) path else dirname(path)  # a script's directory, as plumb(dir) takes it
  meta_path <- file.path(dir, "model.json")
  if (!file.exists(meta_path)) return(invisible(TRUE))
  meta <- jsonlite::fromJSON(meta_path, simplifyVector = FALSE)
  recorded <- meta$tree_sha256 %||% ""
  if (!nzchar(recorded)) {
    stop(sprintf("%s records no tree_sha256 for the script's directory; register the script again with `gateway register`",
                 meta_path), call. = FALSE)
  }
  actual <- tree_sha256(dir)
  if (!identical(actual, recorded)) {
    stop(sprintf("the files of %s have tree_sha256 %s but model.json records %s: a file changed after the script was registered; register a new version instead",
                 dir, actual, recorded), call. = FALSE)
  }
  invisible(TRUE)
}
