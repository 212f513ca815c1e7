# The R wire request → a typed data.frame: {"columns": {...}, "types": {...}, "params": {...}}.

# Parsed JSON values (NULL for null) → one R vector; `fill` is the NA of the result type.
flatten_values <- function(values, fill) {
  if (length(values) == 0) return(fill[0])
  out <- lapply(values, function(v) if (is.null(v)) fill else v)
  unlist(out, use.names = FALSE)
}

# One column of parsed JSON values → an R vector of the wire type.
decode_column <- function(values, type, levels = NULL) {
  switch(type,
    double = as.numeric(flatten_values(values, NA_real_)),
    integer = as.integer(flatten_values(values, NA_integer_)),
    logical = as.logical(flatten_values(values, NA)),
    string = enc2utf8(as.character(flatten_values(values, NA_character_))),
    factor = {
      text <- enc2utf8(as.character(flatten_values(values, NA_character_)))
      factor(text, levels = levels %||% sort(unique(text[!is.na(text)])))
    },
    date = as.Date(as.character(flatten_values(values, NA_character_)), format = "%Y-%m-%d"),
    datetime = parse_datetime(as.character(flatten_values(values, NA_character_))),
    stop(sprintf("unknown column type '%s'", type), call. = FALSE)
  )
}

# Parsed columns and their types (and the schema, for factor levels) → a data.frame.
columns_to_frame <- function(columns, types, inputs = list()) {
  inputs <- read_inputs(inputs)
  specs <- stats::setNames(inputs, vapply(inputs, `[[`, "", "name"))
  decoded <- lapply(names(columns), function(name) {
    type <- types[[name]] %||% specs[[name]]$type
    if (is.null(type)) stop(sprintf("column '%s' has no declared type", name), call. = FALSE)
    decode_column(columns[[name]], type, specs[[name]]$levels)
  })
  names(decoded) <- names(columns)
  data.frame(decoded, check.names = FALSE, stringsAsFactors = FALSE)
}

#' Decode a wire request body into a data.frame and its params.
#'
#' @param body_text the request body, a JSON string.
#' @param inputs the model's inputs schema (factor levels come from it).
#' @return list(frame, params).
decode_wire <- function(body_text, inputs = list()) {
  request <- jsonlite::fromJSON(body_text, simplifyVector = FALSE)
  list(
    frame = columns_to_frame(request[["columns"]], request[["types"]] %||% list(), inputs),
    params = request[["params"]] %||% list()
  )
}

# The binary wire (gateway/codecs/rwire_binary.py), for the gateway's own hop: one line of JSON
# {"rows", "params", "columns": [{"name", "type", "bytes", "missing"}]}, a newline, then each
# column's values back to back: doubles as 8-byte and integers and logicals as 4-byte
# little-endian numbers, text (string, factor, date, datetime) as NUL-terminated UTF-8;
# "missing" lists the rows (1-based) that are null. readBin turns each column into an R vector
# in one step, where JSON costs a parse and a check per value.
BINARY_WIRE_TYPE <- "application/vnd.gatewayr.columns"

# A binary wire body → list(columns = named list of atomic vectors, NA where null, types, params).
# Stops with a message naming the problem when the body is not that layout.
read_binary_wire <- function(body) {
  # The header is short: look there first (match() on the whole body hashes all of it, 15 ms).
  newline <- which(body[seq_len(min(length(body), 4096L))] == as.raw(10L))[1]
  if (is.na(newline)) newline <- which(body == as.raw(10L))[1]
  if (is.na(newline)) stop("the binary body has no header line", call. = FALSE)
  header <- rawToChar(body[seq_len(newline - 1L)])
  Encoding(header) <- "UTF-8"
  head <- jsonlite::fromJSON(header, simplifyVector = FALSE)
  rows <- head[["rows"]]
  if (!is.numeric(rows) || length(rows) != 1 || is.na(rows) || rows < 0 || rows != round(rows)) {
    stop("'rows' must be a count", call. = FALSE)
  }
  rows <- as.integer(rows)
  offset <- newline
  columns <- vector("list", length(head[["columns"]]))
  types <- vector("list", length(columns))
  for (i in seq_along(head[["columns"]])) {
    spec <- head[["columns"]][[i]]
    size <- as.integer(spec[["bytes"]])
    if (offset + size > length(body)) stop(sprintf("column '%s' runs past the body's end", spec[["name"]]), call. = FALSE)
    columns[[i]] <- read_binary_column(body[offset + seq_len(size)], spec[["type"]], rows,
                                       as.integer(unlist(spec[["missing"]])), spec[["name"]])
    types[[i]] <- spec[["type"]]
    offset <- offset + size
  }
  names(columns) <- names(types) <- vapply(head[["columns"]], function(c) as.character(c[["name"]] %||% ""), "")
  list(columns = columns, types = types, params = head[["params"]] %||% list())
}

read_binary_column <- function(bytes, type, rows, missing, name) {
  # Sizes checked before reading: readBin would allocate `rows` strings whatever the bytes hold.
  width <- switch(type, double = 8L, integer = 4L, logical = 4L, 1L)
  fits <- if (width == 1L) rows <= length(bytes) else rows * width == length(bytes)
  if (!fits || any(missing < 1L | missing > rows)) {
    stop(sprintf("column '%s' does not hold %d values in %d bytes", name, rows, length(bytes)), call. = FALSE)
  }
  values <- switch(type,
    double = readBin(bytes, "double", n = rows, size = 8L, endian = "little"),
    integer = readBin(bytes, "integer", n = rows, size = 4L, endian = "little"),
    logical = as.logical(readBin(bytes, "integer", n = rows, size = 4L, endian = "little")),
    string = , factor = , date = , datetime = {
      text <- readBin(bytes, "character", n = rows)
      Encoding(text) <- "UTF-8"
      text
    },
    stop(sprintf("column '%s' has the unknown type '%s'", name, type), call. = FALSE)
  )
  if (length(values) != rows) stop(sprintf("column '%s' holds %d values for %d rows", name, length(values), rows),
                                   call. = FALSE)
  values[missing] <- NA
  # orjson writes a non-finite double as null: the binary wire reads it as the JSON wire does.
  if (type == "double") values[!is.finite(values)] <- NA_real_
  values
}

# Binary wire columns → parsed-JSON-style values (NULL for NA), for the value-by-value checks
# that word a problem exactly as for a JSON body.
as_json_values <- function(columns) {
  lapply(columns, function(vector) {
    values <- as.list(vector)
    values[is.na(vector)] <- list(NULL)
    values
  })
}
