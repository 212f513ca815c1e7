# The inputs schema of model.json: derived from a sample, read back, turned into a prototype.

# The wire type of one sample column; order matters (a factor is an integer underneath).
column_type <- function(column, name) {
  if (is.factor(column)) return("factor")
  if (inherits(column, "Date")) return("date")
  if (inherits(column, "POSIXct")) return("datetime")
  if (is.logical(column)) return("logical")
  if (is.integer(column)) return("integer")
  if (is.double(column) && is.null(oldClass(column))) return("double")
  if (is.character(column)) return("string")
  stop(sprintf(
    "sample column '%s' has class '%s', which the wire format cannot carry; convert it to one of numeric, integer, logical, character, factor, Date or POSIXct",
    name, paste(class(column), collapse = "/")
  ), call. = FALSE)
}

# model.json's `inputs` from a sample data.frame: list of {name, type, levels, nullable}.
infer_inputs <- function(sample) {
  if (!is.data.frame(sample)) {
    stop("`sample` must be a data.frame with the model's predictor columns (a slice of the training data)",
         call. = FALSE)
  }
  lapply(names(sample), function(name) {
    column <- sample[[name]]
    type <- column_type(column, name)
    list(
      name = name,
      type = type,
      # I() keeps a one-level factor's levels an array under auto_unbox.
      levels = if (type == "factor") I(levels(column)) else NULL,
      nullable = anyNA(column)
    )
  })
}

# Normalise inputs read from JSON (levels as lists) or given by hand: levels a character vector.
read_inputs <- function(inputs) {
  lapply(inputs, function(spec) {
    levels <- spec$levels
    list(
      name = as.character(spec$name),
      type = as.character(spec$type),
      levels = if (is.null(levels)) NULL else as.character(unlist(levels)),
      nullable = isTRUE(spec$nullable)
    )
  })
}

# A zero-row column of a wire type.
empty_column <- function(type, levels = NULL) {
  switch(type,
    double = numeric(0),
    integer = integer(0),
    logical = logical(0),
    string = character(0),
    factor = factor(character(0), levels = levels),
    date = as.Date(character(0)),
    datetime = as.POSIXct(character(0), tz = "UTC"),
    stop(sprintf("unknown input type '%s'", type), call. = FALSE)
  )
}

# The zero-row data.frame a model expects: the input prototype.
prototype_frame <- function(inputs) {
  inputs <- read_inputs(inputs)
  columns <- lapply(inputs, function(spec) empty_column(spec$type, spec$levels))
  names(columns) <- vapply(inputs, `[[`, "", "name")
  data.frame(columns, check.names = FALSE, stringsAsFactors = FALSE)
}
