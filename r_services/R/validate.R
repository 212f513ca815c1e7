# Validation of a request's columns against the inputs schema, before any type conversion.
# The messages are pinned by tests/data/validation_cases.json, shared with the Python gateway.

# A JSON value as the messages show it: strings in single quotes, numbers bare, true/false.
show_value <- function(value) {
  if (is.character(value)) return(sprintf("'%s'", value))
  if (is.logical(value)) return(if (isTRUE(value)) "true" else "false")
  if (is.numeric(value)) {
    if (is.finite(value) && value == round(value) && abs(value) < 1e16) return(format(value, scientific = FALSE))
    return(shortest_double(value))
  }
  as.character(jsonlite::toJSON(value, auto_unbox = TRUE, null = "null", digits = NA))
}

is_whole_number <- function(value) is.numeric(value) && is.finite(value) && value == round(value)

iso_date_ok <- function(value) {
  grepl("^[0-9]{4}-[0-9]{2}-[0-9]{2}$", value) &&
    !is.na(as.Date(value, format = "%Y-%m-%d", optional = TRUE))
}

# Does one non-null JSON value fit a column of this spec?
value_fits <- function(value, spec) {
  if (length(value) != 1 || is.list(value)) return(FALSE)
  switch(spec$type,
    double = is.numeric(value),
    integer = is.integer(value) || is_whole_number(value),
    logical = is.logical(value),
    string = is.character(value),
    factor = is.character(value) && (is.null(spec$levels) || value %in% spec$levels),
    date = is.character(value) && iso_date_ok(value),
    datetime = is.character(value) && !is.na(parse_datetime(value)),
    FALSE
  )
}

value_problem <- function(value, spec, row) {
  if (spec$type == "factor" && is.character(value) && length(value) == 1) {
    return(sprintf("column '%s' has unknown level %s at row %d; known levels: %s",
                   spec$name, show_value(value), row, paste(spec$levels, collapse = ", ")))
  }
  sprintf("column '%s' expects %s, got %s at row %d", spec$name, spec$type, show_value(value), row)
}

# The first bad value of a column, as a message, or NULL. JSON null (NULL) is a missing value,
# refused in a column the model declared non-nullable.
column_problem <- function(values, spec) {
  for (row in seq_along(values)) {
    value <- values[[row]]
    if (is.null(value)) {
      if (isFALSE(spec$nullable)) {
        return(sprintf("column '%s' does not allow missing values, got null at row %d", spec$name, row))
      }
    } else if (!value_fits(value, spec)) {
      return(value_problem(value, spec, row))
    }
  }
  NULL
}

# Accept the schema (list of {name, type, levels, nullable}) or a plain named list of types.
as_schema <- function(types_or_schema) {
  if (is.null(names(types_or_schema))) return(read_inputs(types_or_schema))
  lapply(names(types_or_schema), function(name) {
    list(name = name, type = as.character(types_or_schema[[name]]), levels = NULL, nullable = TRUE)
  })
}

#' Check request columns against a model's inputs, the way the Python gateway does.
#'
#' @param columns named list of columns, each a list of parsed JSON values (NULL for null),
#'   i.e. `jsonlite::fromJSON(body, simplifyVector = FALSE)$columns`.
#' @param types_or_schema the model's inputs (list of {name, type, levels, nullable}) or a
#'   named list of types.
#' @param model_name the model's name, for the messages.
#' @return list(status = 200L, detail = NULL) or list(status = 422L, detail = "<first problem>").
validate_frame <- function(columns, types_or_schema, model_name) {
  schema <- as_schema(types_or_schema)
  problem <- first_problem(columns, schema, model_name)
  if (is.null(problem)) list(status = 200L, detail = NULL) else list(status = 422L, detail = problem)
}

first_problem <- function(columns, schema, model_name) {
  n_rows <- if (length(columns) == 0) 0L else length(columns[[1]])
  if (n_rows == 0) return("the request has no rows")
  expected <- vapply(schema, `[[`, "", "name")
  missing <- setdiff(expected, names(columns))
  if (length(missing) > 0) return(sprintf("column '%s' is missing", missing[[1]]))
  unexpected <- setdiff(names(columns), expected)
  if (length(unexpected) > 0) {
    return(sprintf("column '%s' is not an input of model '%s'", unexpected[[1]], model_name))
  }
  for (spec in schema) {
    problem <- column_problem(columns[[spec$name]], spec)
    if (!is.null(problem)) return(problem)
  }
  NULL
}
