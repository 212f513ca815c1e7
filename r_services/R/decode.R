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
