# handle_predict, the protocol-free core of POST /predict, on real and toy models.

rows <- function() cars_frame()[c(1, 3, 20), c("wt", "hp", "cyl", "am")]

lm_loaded <- function() {
  fit <- lm(mpg ~ wt + hp + cyl + am, data = cars_frame())
  store <- tempfile("store-")
  list(fit = fit, loaded = load_model(save_model(fit, store, "mtcars", cars_frame()[c("wt", "hp", "cyl", "am")])))
}

expect_error_reply <- function(out, status, code, message = NULL) {
  expect_identical(out$status, as.integer(status))
  error <- parse_body(out$body)$error
  expect_identical(error$code, code)
  if (!is.null(message)) expect_identical(error$message, message)
}

test_that("an lm answers exactly what predict() gives, to the last bit", {
  model <- lm_loaded()
  out <- handle_predict(model$loaded, wire_request(rows()))
  expect_identical(out$status, 200L)
  got <- vapply(parse_body(out$body)$predictions, identity, 0)
  expect_identical(got, unname(predict(model$fit, rows())))
})

test_that("a randomForest classifier answers classes, or columnar probabilities", {
  set.seed(42)
  frame <- cars_frame()
  forest <- randomForest::randomForest(am ~ mpg + hp + wt, data = frame, ntree = 50)
  loaded <- load_model(save_model(forest, tempfile("store-"), "transmission", frame[c("mpg", "hp", "wt")]))
  newdata <- frame[1:4, c("mpg", "hp", "wt")]

  classes <- handle_predict(loaded, wire_request(newdata))
  expect_identical(classes$status, 200L)
  expect_identical(unlist(parse_body(classes$body)$predictions),
                   as.character(unname(predict(forest, newdata))))

  prob <- handle_predict(loaded, wire_request(newdata, params = list(type = "prob")))
  expect_identical(prob$status, 200L)
  columns <- parse_body(prob$body)$predictions
  expected <- predict(forest, newdata, type = "prob")
  expect_identical(names(columns), c("auto", "manual"))
  for (class in names(columns)) {
    expect_identical(vapply(columns[[class]], as.numeric, 0), unname(expected[, class]))
  }
})

test_that("an R error in the model is a 422 model_error with R's message unchanged", {
  schema <- list(list(name = "x", type = "double", levels = NULL, nullable = FALSE))
  model <- function(newdata, type) {
    if (any(newdata$x < 0)) stop("x must be non-negative")
    sqrt(newdata$x)
  }
  loaded <- loaded_function(model, schema)
  bad <- handle_predict(loaded, wire_request(data.frame(x = c(4, -1))))
  expect_error_reply(bad, 422, "model_error", "x must be non-negative")
  # The same loaded model carries on serving after the error.
  good <- handle_predict(loaded, wire_request(data.frame(x = c(4, 9))))
  expect_identical(good$status, 200L)
  expect_identical(parse_body(good$body)$predictions, list(2, 3))
})

test_that("warnings do not fail a prediction", {
  schema <- list(list(name = "x", type = "double", levels = NULL, nullable = FALSE))
  loaded <- loaded_function(function(newdata, type) log(newdata$x), schema)
  out <- handle_predict(loaded, wire_request(data.frame(x = c(1, -1))))
  expect_identical(out$status, 200L)
  expect_identical(parse_body(out$body)$predictions, list(0, NULL))
})

test_that("malformed bodies and unknown params are 400 bad_request", {
  loaded <- lm_loaded()$loaded
  expect_error_reply(handle_predict(loaded, "{\"columns\": [1,"), 400, "bad_request")
  expect_error_reply(handle_predict(loaded, ""), 400, "bad_request")
  expect_error_reply(handle_predict(loaded, "[1, 2]"), 400, "bad_request")
  expect_error_reply(handle_predict(loaded, "{\"columns\": {\"wt\": [1, 2], \"hp\": [1]}}"), 400, "bad_request",
                     "all columns must hold the same number of values")
  expect_error_reply(handle_predict(loaded, wire_request(rows(), params = list(seed = 1))), 400, "bad_request",
                     "unknown param 'seed' for model 'mtcars'; allowed: type")
  expect_error_reply(handle_predict(loaded, wire_request(rows(), params = list(type = "prob"))), 400,
                     "bad_request", "param 'type' of model 'mtcars' must be one of: response, terms; got 'prob'")
})

test_that("data that do not fit the schema are 422 invalid_input", {
  loaded <- lm_loaded()$loaded
  expect_error_reply(handle_predict(loaded, wire_request(rows()[c("hp", "cyl", "am")])), 422, "invalid_input",
                     "column 'wt' is missing")
  request <- sub("\"manual\"", "\"semi\"", wire_request(rows()))
  expect_error_reply(handle_predict(loaded, request), 422, "invalid_input",
                     "column 'am' has unknown level 'semi' at row 1; known levels: auto, manual")
})

test_that("a model that breaks one-prediction-per-row is a 500 internal", {
  schema <- list(list(name = "x", type = "double", levels = NULL, nullable = FALSE))
  loaded <- loaded_function(function(newdata, type) 1, schema)
  expect_error_reply(handle_predict(loaded, wire_request(data.frame(x = c(1, 2)))), 500, "internal",
                     "model 'toy' returned 1 predictions for 2 rows")
})

test_that("a model that runs past timeout_s is stopped by R: 504, and the next predict is fine", {
  spin <- function(newdata, type) {
    until <- Sys.time() + newdata$x[1]
    while (Sys.time() < until) NULL
    newdata$x
  }
  loaded <- load_model(save_model(spin, tempfile("store-"), "spinning", data.frame(x = c(0.01, 2))))
  started <- proc.time()[["elapsed"]]
  stuck <- handle_predict(loaded, wire_request(data.frame(x = 60)), timeout_s = 0.5)
  expect_lt(proc.time()[["elapsed"]] - started, 5)
  expect_error_reply(stuck, 504, "timeout", "model 'spinning' did not answer within its timeout of 0.5 s")
  quick <- handle_predict(loaded, wire_request(data.frame(x = 0.01)), timeout_s = 0.5)
  expect_identical(quick$status, 200L)
  Sys.sleep(0.6)  # no time limit is left behind once handle_predict has returned
  expect_identical(handle_predict(loaded, wire_request(data.frame(x = 0.01)))$status, 200L)
})

test_that("an error within timeout_s stays R's own 422", {
  failing <- function(newdata, type) if (any(newdata$x > 2)) stop("no good") else newdata$x
  loaded <- load_model(save_model(failing, tempfile("store-"), "failing", data.frame(x = c(1.5, 2))))
  out <- handle_predict(loaded, wire_request(data.frame(x = 3)), timeout_s = 30)
  expect_error_reply(out, 422, "model_error", "no good")
})

test_that("timeout_s covers the whole call: a body too big to decode and check in time is a 504", {
  model <- lm_loaded()
  big <- wire_request(rows()[rep(1:3, length.out = 150000), ])
  started <- proc.time()[["elapsed"]]
  expect_identical(handle_predict(model$loaded, big)$status, 200L)
  whole <- proc.time()[["elapsed"]] - started
  predict_only <- system.time(predict(model$fit, rows()[rep(1:3, length.out = 150000), ]))[["elapsed"]]
  # Before, only predict() was timed: a limit between the two let the request run to its end.
  limit <- max(predict_only * 2, whole / 4)
  expect_lt(limit, whole / 2)  # decoding and checking the body are most of the call
  out <- handle_predict(model$loaded, big, timeout_s = limit)
  expect_error_reply(out, 504, "timeout")
  expect_identical(handle_predict(model$loaded, wire_request(rows()))$status, 200L)
})

test_that("every reply says how long each phase took, for the gateway's trace", {
  model <- lm_loaded()
  out <- handle_predict(model$loaded, wire_request(rows()))
  expect_match(out$timings, "^parse=[0-9.]+;validate=[0-9.]+;predict=[0-9.]+;encode=[0-9.]+$")
  refused <- handle_predict(model$loaded, "{\"columns\": [1,")
  expect_match(refused$timings, "^parse=[0-9.]+$")  # the phases that ran
  expect_identical(format_timings(c(parse = 0.1234, predict = -0.001)), "parse=0.123;predict=0.000")
})

test_that("both of the worker's predict routes send the timings in a header", {
  model <- lm_loaded()
  pr <- model_router(model$loaded$dir, model$loaded)
  app <- predict_app(pr, model$loaded)
  request <- function() {
    body <- charToRaw(wire_request(rows()))
    input <- list(read = function(...) body, rewind = function() invisible(), read_lines = function() character())
    list2env(list(REQUEST_METHOD = "POST", PATH_INFO = "/predict", QUERY_STRING = "", HTTP_HOST = "test",
                  CONTENT_TYPE = "application/json", rook.input = input))
  }
  for (route in list(pr$call, app$call)) {  # the Plumber route, and the direct one the worker serves
    out <- NULL
    capture.output(out <- route(request()), type = "message")  # the request log line
    expect_identical(out$status, 200L)
    expect_match(out$headers[["X-Gateway-R-Timings"]],
                 "^parse=[0-9.]+;validate=[0-9.]+;predict=[0-9.]+;encode=[0-9.]+$")
  }
  expect_identical(timing_headers(list(status = 500L)), list())  # an R error outside handle_predict
})
