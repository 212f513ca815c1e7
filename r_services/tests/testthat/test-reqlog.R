# The per-request log line: what an operator greps for when one request id must be traced.

test_that("a request's log line carries its id, rows, status and timing as one JSON object", {
  line <- request_log_json("req-42.a_b", "mtcars", 3L, 12.34567, 200L,
                           time = as.POSIXct("2026-01-02 03:04:05.25", tz = "UTC"), pid = 7L)
  expect_false(grepl("\n", line))
  entry <- jsonlite::fromJSON(line, simplifyVector = FALSE)
  expect_identical(entry$request_id, "req-42.a_b")
  expect_identical(entry$model, "mtcars")
  expect_identical(entry$rows, 3L)
  expect_identical(entry$status, 200L)
  expect_equal(entry$duration_ms, 12.346)
  expect_identical(entry$time, "2026-01-02T03:04:05.250Z")
  expect_null(entry$error)
})

test_that("an error's line carries R's message; an insane id or unknown rows are null", {
  entry <- jsonlite::fromJSON(
    request_log_json("bad id\nforged", "fragile", NA_integer_, 1, 422L, message = "x must be non-negative"),
    simplifyVector = FALSE
  )
  expect_null(entry$request_id)
  expect_null(entry$rows)
  expect_identical(entry$error, "x must be non-negative")
  expect_null(jsonlite::fromJSON(request_log_json(NULL, "m", 1L, 1, 200L))$request_id)
})

test_that("handle_predict reports the rows it saw and R's message, for the log", {
  loaded <- load_model(save_model(function(newdata, type) {
    if (any(newdata$x < 0)) stop("x must be non-negative")
    newdata$x
  }, tempfile("store-"), "fragile", data.frame(x = c(1.5, 2))))
  good <- handle_predict(loaded, wire_request(data.frame(x = c(1, 2, 3))))
  expect_identical(good$rows, 3L)
  expect_null(good$message)
  bad <- handle_predict(loaded, wire_request(data.frame(x = c(1, -1))))
  expect_identical(bad$rows, 2L)
  expect_match(bad$message, "x must be non-negative")
  unreadable <- handle_predict(loaded, "{not json")
  expect_identical(unreadable$rows, NA_integer_)
})
