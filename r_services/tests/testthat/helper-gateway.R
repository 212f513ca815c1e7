# Shared by the test files: where the repo's golden data and entrypoints are, and small builders.

repo_root <- function() {
  normalizePath(file.path(testthat::test_path(), "..", "..", ".."), mustWork = TRUE)
}

# A file under the repository (tests/data/..., plumber/...); fails clearly when absent.
repo_file <- function(...) {
  path <- file.path(repo_root(), ...)
  if (!file.exists(path)) stop(sprintf("expected %s (run the tests from a full checkout)", path))
  normalizePath(path)
}

read_golden <- function(name) {
  jsonlite::fromJSON(repo_file("tests", "data", name), simplifyVector = FALSE)
}

# Public records (list of named lists) → the columnar form the validator reads; absent → null.
records_to_columns <- function(rows) {
  names <- unique(unlist(lapply(rows, names)))
  columns <- lapply(names, function(name) lapply(rows, function(row) row[[name]]))
  stats::setNames(columns, names)
}

# JSON text for parsed JSON (lists of scalars, as fromJSON(simplifyVector = FALSE) gives).
# Written here, not with jsonlite: jsonlite caps doubles at 15 significant digits, and not
# with the package's encoder, so the tests do not check the encoder against itself.
json_text <- function(x) {
  if (is.null(x)) return("null")
  if (is.list(x)) {
    items <- vapply(x, json_text, "", USE.NAMES = FALSE)
    if (!is.null(names(x))) {
      if (length(x) == 0) return("{}")
      return(paste0("{", paste0(vapply(names(x), json_text, ""), ":", items, collapse = ","), "}"))
    }
    return(paste0("[", paste(items, collapse = ","), "]"))
  }
  stopifnot(length(x) == 1)
  if (is.na(x)) return("null")
  if (is.character(x)) return(as.character(jsonlite::toJSON(x, auto_unbox = TRUE)))
  if (is.logical(x)) return(if (x) "true" else "false")
  if (is.integer(x)) return(sprintf("%d", x))
  sprintf("%.17g", x)
}

request_text <- function(request) json_text(request)

# A wire request from a data.frame of inputs (factors sent as strings, NA as null).
wire_request <- function(frame, params = NULL) {
  columns <- lapply(frame, function(col) as.list(if (is.factor(col)) as.character(col) else col))
  types <- lapply(frame, function(col) gatewayr:::column_type(col, ""))
  empty <- structure(list(), names = character(0))
  json_text(list(columns = columns, types = types, params = params %||% empty))
}

`%||%` <- function(x, y) if (is.null(x)) y else x

# A loaded model made in memory (no store): a function model with a given schema.
loaded_function <- function(fun, schema, name = "toy", outputs = list(kind = "regression")) {
  list(meta = list(name = name, version = "1", outputs = outputs, inputs = schema),
       model = fun, inputs = gatewayr:::read_inputs(schema))
}

parse_body <- function(text) jsonlite::fromJSON(text, simplifyVector = FALSE)

# mtcars with the demo model's column types: cyl integer, am a factor.
cars_frame <- function() {
  frame <- mtcars
  frame$cyl <- as.integer(frame$cyl)
  frame$am <- factor(ifelse(frame$am == 1, "manual", "auto"), levels = c("auto", "manual"))
  frame
}

# One nullable column of each wire type (a factor with levels a, b): the decoding tests' schema.
every_type_schema <- function() {
  column <- function(name, type, levels = NULL) list(name = name, type = type, levels = levels, nullable = TRUE)
  list(column("x", "double"), column("n", "integer"), column("ok", "logical"), column("s", "string"),
       column("f", "factor", list("a", "b")), column("d", "date"), column("t", "datetime"))
}

schema_types <- function(schema) stats::setNames(lapply(schema, `[[`, "type"), vapply(schema, `[[`, "", "name"))

# The mtcars lm on wt and hp, saved and loaded, with its Plumber router and the direct predict app.
direct_app <- function(name) {
  frame <- cars_frame()
  fit <- lm(mpg ~ wt + hp, data = frame)
  dir <- save_model(fit, tempfile("store-"), name, frame[c("wt", "hp")])
  loaded <- load_model(dir)
  pr <- model_router(dir, loaded)
  list(frame = frame, fit = fit, dir = dir, loaded = loaded, pr = pr, app = predict_app(pr, loaded))
}
