# Small helpers shared by the other files.

`%||%` <- function(x, y) if (is.null(x)) y else x

# One line to stderr, prefixed so it stands out in supervisord's logs.
log_line <- function(...) {
  stamp <- format(Sys.time(), "%Y-%m-%dT%H:%M:%SZ", tz = "UTC")
  cat(sprintf("[gatewayr %s pid %d] %s\n", stamp, Sys.getpid(), paste0(...)), file = stderr())
}

# A JSON object from a named list, with every option spelled out (see STYLE.md's traps).
to_json_object <- function(x, pretty = FALSE) {
  as.character(jsonlite::toJSON(
    x, auto_unbox = TRUE, null = "null", na = "null", digits = NA, pretty = pretty
  ))
}

# The error body every route answers with: {"error": {"code": ..., "message": ...}}, plus
# `fields` (a model_problem's status and type).
error_json <- function(code, message, fields = list()) {
  to_json_object(list(error = c(list(code = code, message = paste(message, collapse = "\n")), fields)))
}

# Is a parsed JSON value (simplifyVector = FALSE) an object? Arrays come back unnamed.
is_json_object <- function(x) is.list(x) && !is.null(names(x))
