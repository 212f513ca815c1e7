# The golden JSON shared with pytest: the R side of the wire format and of validation.

wire <- read_golden("wire_roundtrip.json")

for (case in wire$cases) {
  test_that(paste("wire:", case$name), {
    decoded <- decode_wire(request_text(case$request), case$schema)
    frame <- decoded$frame
    expect_identical(names(frame), names(case$r_classes))
    for (name in names(case$r_classes)) {
      expect_identical(class(frame[[name]])[[1]], case$r_classes[[name]], info = name)
    }
    echo <- unlist(case$echo)
    out <- if (length(echo) == 1) frame[[echo]] else frame[echo]
    expect_identical(parse_body(encode_predictions(out)), case$reply)
  })

  test_that(paste("wire through handle_predict:", case$name), {
    echo <- unlist(case$echo)
    model <- function(newdata, type) if (length(echo) == 1) newdata[[echo]] else newdata[echo]
    out <- handle_predict(loaded_function(model, case$schema), request_text(case$request))
    expect_identical(out$status, 200L)
    expect_identical(parse_body(out$body), case$reply)
  })
}

test_that("doubles keep every bit: 1/3 reads back exactly, whole doubles stay doubles", {
  third <- encode_predictions(1 / 3)
  expect_identical(parse_body(third)$predictions[[1]], 1 / 3)
  expect_identical(encode_predictions(3), "{\"predictions\":[3.0]}")
  expect_identical(encode_predictions(c(1e-300, -2.5e300, NaN, Inf)),
                   "{\"predictions\":[1e-300,-2.5e+300,null,null]}")
  values <- c(0.1 + 0.2, pi, exp(1), 123456789.123456789, .Machine$double.eps, 2^-1074)
  expect_identical(unlist(parse_body(encode_predictions(values))$predictions), values)
})

test_that("one row stays an array and names are dropped", {
  expect_identical(encode_predictions(c(a = 2.5)), "{\"predictions\":[2.5]}")
  expect_identical(encode_predictions(7L), "{\"predictions\":[7]}")
  expect_identical(encode_predictions(matrix(c(0.25, 0.75), 1, dimnames = list(NULL, c("a", "b")))),
                   "{\"predictions\":{\"a\":[0.25],\"b\":[0.75]}}")
})

validation <- read_golden("validation_cases.json")

for (case in validation$cases) {
  test_that(paste("validation:", case$name), {
    result <- validate_frame(records_to_columns(case$rows), validation$schema, validation$model)
    expect_identical(result$status, as.integer(case$status))
    expect_identical(result$detail, case$detail)
  })
}

test_that("validation cases answer the same through handle_predict", {
  model <- function(newdata, type) rep(1, nrow(newdata))
  loaded <- loaded_function(model, validation$schema, name = validation$model)
  for (case in validation$cases) {
    columns <- records_to_columns(case$rows)
    body <- list(columns = if (length(columns)) columns else structure(list(), names = character(0)),
                 types = lapply(validation$schema, `[[`, "type"), params = structure(list(), names = character(0)))
    names(body$types) <- vapply(validation$schema, `[[`, "", "name")
    out <- handle_predict(loaded, request_text(body))
    expect_identical(out$status, as.integer(case$status), info = case$name)
    if (case$status != 200) {
      expect_identical(parse_body(out$body)$error, list(code = "invalid_input", message = case$detail),
                       info = case$name)
    }
  }
})

test_that("times round to the microsecond, carrying into the next second; years keep four digits", {
  times <- as.POSIXct(c(946684800.002, 0.9999999, -62135596800, NA), origin = "1970-01-01", tz = "UTC")
  expect_identical(format_datetime(times),
                   c("2000-01-01T00:00:00.002000Z", "1970-01-01T00:00:01Z", "0001-01-01T00:00:00Z", NA))
  expect_identical(format_date(as.Date(c("0999-12-31", NA))), c("0999-12-31", NA))
})
