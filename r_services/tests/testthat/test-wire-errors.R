# The golden error replies shared with pytest (tests/data/wire_errors.json): R's side, that
# handle_predict answers each case with the listed status and code.

golden <- read_golden("wire_errors.json")

toy_model <- function(newdata, type) {
  if (any(newdata$x < 0)) stop("x must be non-negative")
  if (any(newdata$x == 409)) problem(409, "stale_features", "features are stale")
  if (any(newdata$x == 999)) return(1)
  if (any(newdata$x > 1000)) {
    until <- Sys.time() + 5
    while (Sys.time() < until) NULL
  }
  newdata$x
}

test_that("every golden error case gets its status and code from handle_predict", {
  schema <- list(list(name = "x", type = "double", levels = NULL, nullable = FALSE))
  loaded <- loaded_function(toy_model, schema)
  for (case in golden$cases) {
    out <- handle_predict(loaded, case$body, timeout_s = case$timeout_s %||% 30)
    expect_identical(out$status, as.integer(case$r$status), label = case$when)
    error <- parse_body(out$body)$error
    expect_identical(error$code, case$r$code, label = case$when)
    if (!is.null(case$r$message)) expect_identical(error$message, case$r$message, label = case$when)
    for (field in names(case$r$fields)) expect_identical(error[[field]], case$r$fields[[field]], label = case$when)
  }
})
