# gatewayr::problem(): a condition the gateway answers with the model's own status and type.

test_that("problem() signals a gateway_problem error carrying status, type and detail", {
  caught <- tryCatch(problem(409, "stale_features", "features are a day old"), gateway_problem = function(p) p)
  expect_s3_class(caught, c("gateway_problem", "error", "condition"))
  expect_identical(list(caught$status, caught$type, conditionMessage(caught)),
                   list(409, "stale_features", "features are a day old"))
  expect_error(problem(503, "warming_up", "later"), "later", class = "gateway_problem")
})

test_that("handle_predict answers a problem as 422 model_problem with the status and type on the wire", {
  schema <- list(list(name = "x", type = "double", levels = NULL, nullable = FALSE))
  model <- function(newdata, type) {
    if (any(newdata$x == 1)) problem(503, "warming_up", "the cache is cold")
    if (any(newdata$x == 2)) problem(c(1, 2), NA_character_, "odd fields")
    newdata$x
  }
  loaded <- loaded_function(model, schema)
  body <- function(x) sprintf('{"columns": {"x": [%s]}, "types": {"x": "double"}, "params": {}}', x)
  out <- handle_predict(loaded, body(1))
  expect_identical(out$status, 422L)
  expect_identical(parse_body(out$body)$error,
                   list(code = "model_problem", message = "the cache is cold", status = 503L, type = "warming_up"))
  # a status or type that is not one value travels as nothing: the gateway answers 422 model_error
  odd <- parse_body(handle_predict(loaded, body(2))$body)$error
  expect_identical(odd[c("code", "message")], list(code = "model_problem", message = "odd fields"))
  expect_null(odd$status)
  expect_null(odd$type)
})
