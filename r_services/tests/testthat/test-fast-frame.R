# fast_frame (whole-column decoding) must build exactly what the value-by-value path builds, and
# step aside (NULL) whenever that path would refuse or needs to word a problem.

schema <- every_type_schema()
types <- schema_types(schema)

parse_columns <- function(text) jsonlite::fromJSON(text, simplifyVector = FALSE)

valid <- paste0('{"x": [0.123456789, 3, null], "n": [1, null, -2147483647], "ok": [true, null, false],',
                ' "s": ["", "caf\\u00e9", null], "f": ["b", null, "a"], "d": ["2024-02-29", null, "0999-12-31"],',
                ' "t": ["2024-01-02T03:04:05.25Z", null, "2024-01-02 03:04+02:00"]}')

test_that("valid columns of every wire type decode as the value-by-value path decodes them", {
  columns <- parse_columns(valid)
  expect_identical(validate_frame(columns, schema, "m")$status, 200L)
  expect_identical(fast_frame(columns, schema), columns_to_frame(columns, types, schema))
})

test_that("request column order is kept", {
  columns <- parse_columns(valid)[c("t", "d", "f", "s", "ok", "n", "x")]
  expect_identical(names(fast_frame(columns, schema)), names(columns))
  expect_identical(fast_frame(columns, schema), columns_to_frame(columns, types, schema))
})

cases <- list(
  "a boolean among numbers" = list(column = "x", values = "[1.5, true]"),
  "a number among strings" = list(column = "s", values = "[\"a\", 1]"),
  "a string among numbers" = list(column = "x", values = "[1.5, \"2\"]"),
  "a nested array" = list(column = "x", values = "[[1.5], 2]"),
  "an empty array as a value" = list(column = "x", values = "[[], 2]"),
  "an object as a value" = list(column = "s", values = "[{\"a\": 1}, \"b\"]"),
  "a fraction in an integer column" = list(column = "n", values = "[1, 2.5]"),
  "an integer past R's range" = list(column = "n", values = "[1, 3000000000]"),
  "an unknown level" = list(column = "f", values = "[\"a\", \"c\"]"),
  "a date that is not a day" = list(column = "d", values = "[\"2023-02-29\", null]"),
  "a date in another format" = list(column = "d", values = "[\"01/02/2024\", null]"),
  "a datetime that does not parse" = list(column = "t", values = "[\"yesterday\", null]")
)

for (name in names(cases)) {
  test_that(paste("fast_frame steps aside for", name), {
    columns <- parse_columns(valid)
    columns[[cases[[name]]$column]] <- jsonlite::fromJSON(cases[[name]]$values, simplifyVector = FALSE)
    expect_null(fast_frame(columns, schema))
  })
}

test_that("fast_frame steps aside for missing, extra and duplicated columns and empty requests", {
  columns <- parse_columns(valid)
  expect_null(fast_frame(columns[-1], schema))
  expect_null(fast_frame(c(columns, list(extra = list(1, 2, 3))), schema))
  expect_null(fast_frame(c(columns, columns["x"]), schema))
  expect_null(fast_frame(lapply(columns, function(v) list()), schema))
  expect_null(fast_frame(list(), schema))
})

test_that("a mixed column through handle_predict is still refused with the value-by-value message", {
  model <- function(newdata, type) rep(1, nrow(newdata))
  one <- list(list(name = "x", type = "double", levels = NULL, nullable = TRUE))
  loaded <- loaded_function(model, one, name = "m")
  out <- handle_predict(loaded, '{"columns": {"x": [1.5, true]}, "types": {"x": "double"}, "params": {}}')
  expect_identical(out$status, 422L)
  expect_identical(parse_body(out$body)$error$message, "column 'x' expects double, got true at row 2")
})
