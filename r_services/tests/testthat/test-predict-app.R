# The generic worker's direct /predict route: the same answer as its Plumber route, and every
# other request still reaches the router.

rook_request <- function(method, path, body = "", headers = list()) {
  bytes <- charToRaw(body)
  input <- list(read = function(...) bytes, rewind = function() invisible(), read_lines = function() character())
  list2env(c(list(REQUEST_METHOD = method, PATH_INFO = path, QUERY_STRING = "", HTTP_HOST = "test",
                  CONTENT_TYPE = "application/json", rook.input = input), headers))
}

quietly <- function(expr) {
  out <- NULL
  capture.output(capture.output(out <- expr, type = "message"))
  out
}

test_that("the direct predict route answers the Plumber route's status and bytes", {
  model <- direct_app("direct")
  frame <- model$frame
  fit <- model$fit
  pr <- model$pr
  app <- model$app
  for (body in c(wire_request(frame[1:3, c("wt", "hp")]), "{\"columns\":", wire_request(frame[1:2, "wt", drop = FALSE]))) {
    direct <- quietly(app$call(rook_request("POST", "/predict", body)))
    routed <- quietly(pr$call(rook_request("POST", "/predict", body)))
    expect_identical(direct$status, routed$status)
    expect_identical(as.character(direct$body), as.character(routed$body))
    expect_identical(direct$headers[["Content-Type"]], "application/json")
  }
  predictions <- jsonlite::fromJSON(quietly(app$call(rook_request("POST", "/predict", wire_request(frame[1:3, c("wt", "hp")]))))$body)
  expect_equal(predictions$predictions, unname(predict(fit, frame[1:3, c("wt", "hp")])))
})

test_that("health, metadata and unknown routes still go through the Plumber router", {
  frame <- cars_frame()
  dir <- save_model(lm(mpg ~ wt, data = frame), tempfile("store-"), "routed", frame["wt"])
  loaded <- load_model(dir)
  app <- predict_app(model_router(dir, loaded), loaded)
  health <- quietly(app$call(rook_request("GET", "/healthz")))
  expect_identical(health$status, 200L)
  expect_identical(jsonlite::fromJSON(as.character(health$body))$model, "routed")
  missing <- quietly(app$call(rook_request("GET", "/nope")))
  expect_identical(missing$status, 404L)
  expect_identical(jsonlite::fromJSON(as.character(missing$body))$error$code, "not_found")
  not_post <- quietly(app$call(rook_request("GET", "/predict")))
  expect_false(identical(not_post$status, 200L))
})

test_that("a request log line is written for each direct predict, with its id", {
  frame <- cars_frame()
  dir <- save_model(lm(mpg ~ wt, data = frame), tempfile("store-"), "logged", frame["wt"])
  loaded <- load_model(dir)
  app <- predict_app(model_router(dir, loaded), loaded)
  lines <- capture.output(type = "message", {
    invisible(app$call(rook_request("POST", "/predict", wire_request(frame[1:2, "wt", drop = FALSE]),
                                    list(HTTP_X_REQUEST_ID = "direct-1"))))
    flush_request_log()  # the line waits in the batch (reqlog.R) until the later callback
  })
  entry <- jsonlite::fromJSON(lines[grepl("direct-1", lines)][[1]])
  expect_identical(entry[c("model", "rows", "status")], list(model = "logged", rows = 2L, status = 200L))
})
