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

# The batch (reqlog.R): lines wait for one cat() after the delay, so supervisord wakes once per batch.
with_request_log_delay <- function(delay_s, code) {
  old <- request_log$delay_s
  request_log$delay_s <- delay_s
  on.exit({
    flush_request_log()
    request_log$delay_s <- old
  })
  code
}

test_that("request lines wait for the later callback, then leave whole in one write", {
  written <- character()
  with_request_log_delay(0.05, {
    written <- capture.output(type = "message", {
      for (i in 1:20) log_request(sprintf("batch-%d", i), "mtcars", i, 1.5, 200L)
      before <- request_log$lines
      deadline <- Sys.time() + 5
      while (length(request_log$lines) > 0 && Sys.time() < deadline) later::run_now(0.5)
    })
    expect_length(before, 20)  # nothing written while the batch waited
  })
  expect_length(written, 20)
  ids <- vapply(written, function(line) jsonlite::fromJSON(line)$request_id, "", USE.NAMES = FALSE)
  expect_identical(ids, sprintf("batch-%d", 1:20))
  expect_false(request_log$scheduled)
})

test_that("a delay of 0 writes each line at once; a full batch does not wait", {
  now <- capture.output(type = "message", with_request_log_delay(0, log_request("now-1", "m", 1L, 1, 200L)))
  expect_identical(jsonlite::fromJSON(now)$request_id, "now-1")
  big <- strrep("x", 70000)
  full <- capture.output(type = "message", with_request_log_delay(60, {
    log_request("full-1", "m", 1L, 1, 500L, message = big)
    expect_length(request_log$lines, 0)
  }))
  expect_identical(jsonlite::fromJSON(full)$error, big)
})

test_that("a worker's buffered request lines are written when its serving loop ends", {
  frame <- cars_frame()
  dir <- save_model(lm(mpg ~ wt, data = frame), tempfile("store-"), "exiting", frame["wt"])
  # A minute's delay: only the exit can write the line within this test.
  server <- start_entrypoint("worker.R", dir, vars = c(GATEWAY_LOG_FLUSH_MS = "60000"))
  wait_until_up(server, "/healthz")
  reply <- httr::POST(paste0(server$url, "/predict"), body = wire_request(frame[1, "wt", drop = FALSE]),
                      httr::content_type_json(), httr::add_headers(`X-Request-ID` = "exit-flush-1"))
  expect_identical(httr::status_code(reply), 200L)
  expect_false(any(grepl("exit-flush-1", readLines(server$log, warn = FALSE), fixed = TRUE)))
  tools::pskill(server$pid, tools::SIGINT)  # ends R's serving loop: run_router's on.exit runs
  deadline <- Sys.time() + 10
  while (tools::pskill(server$pid, 0) && Sys.time() < deadline) Sys.sleep(0.05)
  expect_identical(logged_request(server, "exit-flush-1", seconds = 0)$status, 200L)
})
