# gateway_predict, the R client, against a real stack started with `gateway up --detach`
# (NGINX, Gunicorn, R pools) on a free port, and stopped with `gateway down` whatever happens.

start_stack <- function(env = parent.frame()) {
  gateway <- file.path(repo_root(), ".venv", "bin", "gateway")
  if (!file.exists(gateway)) stop("expected ", gateway, ": run `make deps` first")
  dir <- tempfile("stack-")
  dir.create(dir)
  port <- httpuv::randomPort()
  config <- file.path(dir, "gateway.toml")
  writeLines(c(
    "[server]", sprintf("port = %d", port), "workers = 1", "threads = 2",
    sprintf("run_dir = \"%s\"", file.path(dir, "run")),
    # R's 0700 tempdir: the service users of a root-started stack could not cross it (no drop).
    "user = \"\"",
    "[store]", sprintf("path = \"%s\"", file.path(dir, "store")),
    "[models.iris]", "backend = \"python\"",
    "[models.mtcars]", "backend = \"plumber\"", "workers = 1",
    "[models.transmission]", "backend = \"plumber\"", "workers = 1"
  ), config)
  run <- function(...) {
    # R's LD_LIBRARY_PATH would load the system's libpython into the venv's Python: drop it.
    args <- c("-u", "LD_LIBRARY_PATH", paste0("R_LIBS=", paste(.libPaths(), collapse = ":")), gateway,
              "--config", shQuote(config), ...)
    out <- suppressWarnings(system2("env", args, stdout = TRUE, stderr = TRUE))
    status <- attr(out, "status") %||% 0L
    if (status != 0L) stop(sprintf("gateway %s failed (%d):\n%s", paste(...), status, paste(out, collapse = "\n")))
    out
  }
  run("build-demo")
  withr::defer(run("down"), envir = env)  # before `up`: a half-started stack is stopped too
  run("up", "--detach")
  list(url = sprintf("http://127.0.0.1:%d", port), store = file.path(dir, "store"), run_dir = file.path(dir, "run"))
}

# One stack for both parts (starting R pools costs seconds).
test_that("gateway_predict calls the native surface of Python and R models; errors carry the gateway's words", {
  stack <- start_stack()
  cars <- data.frame(wt = c(2.62, 0.123456789012), hp = c(110, 245), cyl = c(6L, 8L),
                     am = factor(c("manual", "auto"), levels = c("auto", "manual")))
  economy <- load_model(file.path(stack$store, "mtcars", "1"))$model
  got <- gateway_predict(stack$url, "mtcars", cars)
  expect_identical(as.vector(got), unname(predict(economy, cars)))  # every digit survives both hops
  expect_identical(attr(got, "version"), "1")
  expect_identical(as.vector(gateway_predict(stack$url, "mtcars", cars[1, ], version = "1")),
                   unname(predict(economy, cars[1, ])))  # one row is still a vector of one

  flowers <- data.frame(sepal_length = c(5.1, 6.7), sepal_width = c(3.5, 3.0),
                        petal_length = c(1.4, 5.2), petal_width = c(0.2, 2.3))
  expect_identical(as.vector(gateway_predict(stack$url, "iris", flowers)), c("setosa", "virginica"))
  probs <- gateway_predict(stack$url, "iris", flowers, type = "prob")
  expect_identical(names(probs), c("setosa", "versicolor", "virginica"))
  expect_equal(unname(rowSums(probs)), c(1, 1), tolerance = 1e-12)

  rides <- data.frame(mpg = c(21, 32.4), hp = c(110, 66), wt = c(2.62, 2.2),
                      engine = factor(c("V-shaped", "straight"), levels = c("V-shaped", "straight")))
  forest <- load_model(file.path(stack$store, "transmission", "1"))$model
  expected <- predict(forest, rides, type = "prob")
  probs <- gateway_predict(stack$url, "transmission", rides, type = "prob")
  expect_identical(names(probs), c("auto", "manual"))
  expect_identical(probs$manual, unname(expected[, "manual"]))

  # Errors: the gateway's own message and status, as a classed condition.
  missing <- tryCatch(gateway_predict(stack$url, "mtcars", data.frame(hp = 110, cyl = 6L, am = "auto")),
                      gateway_error = function(e) e)
  expect_s3_class(missing, "gateway_error")
  expect_identical(missing$status, 422L)
  expect_match(conditionMessage(missing), "column 'wt' is missing", fixed = TRUE)
  expect_error(gateway_predict(stack$url, "nope", data.frame(x = 1)), "model 'nope' does not exist",
               class = "gateway_error")
  expect_error(gateway_predict(stack$url, "mtcars", data.frame(wt = 2.6, hp = 110, cyl = 6L, am = "auto"),
                               type = "prob"), "param 'type' must be one of response", class = "gateway_error")
  expect_error(gateway_predict(stack$url, "mtcars", list(wt = 1)), "must be a data.frame")
})
