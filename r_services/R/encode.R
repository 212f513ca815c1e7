# Predictions → the wire reply {"predictions": ...}, written by hand where jsonlite would round.

# The shortest of 15, 16 or 17 significant digits that reads back as the same double.
shortest_double <- function(x) {
  out <- sprintf("%.15g", x)
  for (digits in c(16, 17)) {
    lossy <- as.numeric(out) != x
    if (!any(lossy)) break
    out[lossy] <- sprintf(paste0("%.", digits, "g"), x[lossy])
  }
  out
}

# Doubles as JSON numbers: full precision, whole values as "3.0" so they stay doubles,
# NA/NaN/Inf as null (JSON has no such numbers).
json_doubles <- function(x) {
  x <- as.numeric(x)
  finite <- is.finite(x)
  out <- rep("null", length(x))
  text <- shortest_double(x[finite])
  plain <- !grepl("[.eE]", text)
  text[plain] <- paste0(text[plain], ".0")
  out[finite] <- text
  out
}

json_integers <- function(x) ifelse(is.na(x), "null", sprintf("%d", as.integer(x)))

json_logicals <- function(x) ifelse(is.na(x), "null", ifelse(x, "true", "false"))

# Strings through jsonlite, which escapes them properly; NA → null.
json_strings <- function(x) {
  x <- enc2utf8(as.character(x))
  out <- rep("null", length(x))
  present <- !is.na(x)
  out[present] <- vapply(x[present], function(s) {
    as.character(jsonlite::toJSON(s, auto_unbox = TRUE))
  }, "", USE.NAMES = FALSE)
  out
}

# One vector → a JSON array, never unboxed: one row is still a list of one.
json_array <- function(x) {
  items <- if (is.factor(x)) {
    json_strings(as.character(x))
  } else if (inherits(x, "Date")) {
    json_strings(format_date(x))
  } else if (inherits(x, "POSIXt")) {
    json_strings(format_datetime(as.POSIXct(x)))
  } else if (is.logical(x)) {
    json_logicals(x)
  } else if (is.integer(x)) {
    json_integers(x)
  } else if (is.double(x)) {
    json_doubles(x)
  } else if (is.character(x)) {
    json_strings(x)
  } else {
    stop(sprintf("cannot encode predictions of class '%s' as JSON", paste(class(x), collapse = "/")),
         call. = FALSE)
  }
  paste0("[", paste(items, collapse = ","), "]")
}

# A data.frame or matrix → columnar {"col": [...], ...}; unnamed columns are numbered.
json_columns <- function(x) {
  columns <- if (is.matrix(x)) lapply(seq_len(ncol(x)), function(j) x[, j]) else as.list(x)
  labels <- colnames(x) %||% as.character(seq_along(columns))
  keys <- json_strings(labels)
  paste0("{", paste0(keys, ":", vapply(columns, json_array, ""), collapse = ","), "}")
}

#' Encode predictions as the wire reply.
#'
#' @param x a vector (one prediction per row) or a data.frame / matrix (multi-output,
#'   one column per output).
#' @return a JSON string `{"predictions": [...]}` or `{"predictions": {"col": [...], ...}}`.
encode_predictions <- function(x) {
  body <- if (is.data.frame(x) || is.matrix(x)) json_columns(x) else json_array(x)
  paste0("{\"predictions\":", body, "}")
}
