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

# The binary wire's reply (a request that came in binary gets one): the layout of
# read_binary_wire, with {"rows", "shape": "vector" | "columns", "columns": [...]} in the header.
# Doubles go as their 8 bytes, so none is turned into text and back (shortest_double took a third
# of R's time at 10 000 rows); each value reads back as the same double the JSON reply gives.
binary_column <- function(x, name = NULL) {
  if (is.factor(x)) {
    x <- as.character(x)
  } else if (inherits(x, "Date")) {
    x <- format_date(x)
  } else if (inherits(x, "POSIXt")) {
    x <- format_datetime(as.POSIXct(x))
  }
  missing <- if (is.double(x)) which(!is.finite(x)) else which(is.na(x))
  if (is.logical(x) || is.integer(x)) {
    type <- if (is.logical(x)) "logical" else "integer"
    bytes <- writeBin(as.integer(x), raw(), size = 4L, endian = "little")
  } else if (is.double(x)) {
    type <- "double"
    x[missing] <- 0
    bytes <- writeBin(as.numeric(x), raw(), size = 8L, endian = "little")
  } else if (is.character(x)) {
    type <- "string"
    x <- enc2utf8(x)
    x[missing] <- ""
    bytes <- writeBin(x, raw())
  } else {
    stop(sprintf("cannot encode predictions of class '%s' as JSON", paste(class(x), collapse = "/")),
         call. = FALSE)
  }
  # The header by hand: jsonlite::toJSON costs about 0.3 ms a call, as much as a 1-row predict.
  head <- sprintf("{\"name\":%s,\"type\":\"%s\",\"bytes\":%d,\"missing\":[%s]}",
                  if (is.null(name)) "null" else json_strings(name), type, length(bytes),
                  paste(missing, collapse = ","))
  list(head = head, bytes = bytes)
}

#' Encode predictions as the binary wire reply.
#'
#' @param x as for encode_predictions().
#' @return a raw vector: the header line, then each column's values.
#' @noRd
encode_predictions_binary <- function(x) {
  columnar <- is.data.frame(x) || is.matrix(x)
  columns <- if (!columnar) {
    list(binary_column(x))
  } else {
    vectors <- if (is.matrix(x)) lapply(seq_len(ncol(x)), function(j) x[, j]) else as.list(x)
    labels <- colnames(x) %||% as.character(seq_along(vectors))
    Map(binary_column, vectors, labels)
  }
  header <- sprintf("{\"rows\":%d,\"shape\":\"%s\",\"columns\":[%s]}",
                    if (columnar) nrow(x) else length(x), if (columnar) "columns" else "vector",
                    paste(vapply(columns, `[[`, "", "head"), collapse = ","))
  c(charToRaw(header), as.raw(10L), unlist(lapply(columns, `[[`, "bytes"), use.names = FALSE))
}
