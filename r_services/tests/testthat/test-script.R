# A user's Plumber material: how its router is built, how its errors answer, what it needs.
# Route shape only (no server): the live and conformance suites serve the real thing.

write_app <- function(files) {
  dir <- tempfile("app-")
  dir.create(dir)
  for (name in names(files)) writeLines(files[[name]], file.path(dir, name))
  normalizePath(dir)
}

# A Rook request as httpuv hands it to Plumber.
fake_request <- function(method, path, headers = list()) {
  input <- list(read = function(...) raw(), rewind = function() invisible(), read_lines = function() character())
  list2env(c(list(REQUEST_METHOD = method, PATH_INFO = path, QUERY_STRING = "", HTTP_HOST = "test",
                  rook.input = input), headers))
}

call_route <- function(pr, method, path, headers = list()) {
  out <- NULL
  # Plumber prints the error, gatewayr logs it: neither belongs in the test's output.
  capture.output(capture.output(out <- pr$call(fake_request(method, path, headers)), type = "message"))
  out$body <- as.character(out$body)
  out
}

test_that("a script built with pr() serves the router it ends with, without running it", {
  withr::local_dir(tempdir())
  dir <- write_app(list(app.R = c(
    "pr() |> pr_get('/hi', function() 'hi') |> pr_run(port = 1)"  # pr_run is not run here
  )))
  withr::local_package("plumber")  # as plumber/script.R attaches it
  pr <- gatewayr:::plumb_target(file.path(dir, "app.R"))
  expect_s3_class(pr, "Plumber")
  expect_identical(call_route(pr, "GET", "/hi")$body, "[\"hi\"]")
  expect_identical(normalizePath(getwd()), dir)  # the script's own folder, for relative paths
})

test_that("a script with neither annotations nor a router says so", {
  withr::local_dir(tempdir())
  dir <- write_app(list(app.R = "x <- 1"))
  expect_error(gatewayr:::plumb_target(file.path(dir, "app.R")),
               "app.R has no Plumber annotations .* does not return a Plumber router")
})

test_that("a directory or its entrypoint.R serves the router entrypoint.R returns, as plumb(dir)", {
  withr::local_dir(tempdir())
  dir <- write_app(list(
    plumber.R = c("#* @get /from-plumber-r", "function() 'no'"),
    routes.R = c("#* @get /hi", "function() 'from entrypoint'"),
    entrypoint.R = "plumber::pr('routes.R')"
  ))
  for (target in c(dir, file.path(dir, "entrypoint.R"))) {
    pr <- gatewayr:::plumb_target(target)
    expect_identical(call_route(pr, "GET", "/hi")$body, "[\"from entrypoint\"]")
    expect_identical(call_route(pr, "GET", "/from-plumber-r")$status, 404)
  }
})

test_that("errors answer as Plumber does; only the gateway's predict call gets R's message", {
  pr <- plumber::pr() |>
    plumber::pr_get("/boom", function() stop("secret detail")) |>
    plumber::pr_get("/teapot", function(res) {
      res$status <- 418
      stop("secret detail")
    })
  pr <- gatewayr:::add_script_errors(pr)
  hidden <- call_route(pr, "GET", "/boom")
  expect_identical(list(hidden$status, hidden$body), list(500, "{\"error\":\"500 - Internal server error\"}"))
  kept <- call_route(pr, "GET", "/teapot")
  expect_identical(list(kept$status, kept$body), list(418, "{\"error\":\"Internal error\"}"))
  expect_identical(call_route(pr, "GET", "/nope")$body, "{\"error\":\"404 - Resource Not Found\"}")
  predict <- list(HTTP_X_GATEWAY_PREDICT = "1")
  told <- call_route(pr, "GET", "/boom", predict)
  expect_identical(told$status, 500L)
  expect_identical(jsonlite::fromJSON(told$body)$error, list(code = "model_error", message = "secret detail"))
  expect_match(call_route(pr, "GET", "/nope", predict)$body, "the script has no route GET /nope")
})

test_that("a script's own error and 404 handlers stay in charge", {
  pr <- plumber::pr() |>
    plumber::pr_get("/boom", function() stop("x")) |>
    plumber::pr_set_error(function(req, res, err) {
      res$status <- 503
      list(mine = TRUE)
    }) |>
    plumber::pr_set_404(function(req, res) {
      res$status <- 410
      list(gone = TRUE)
    })
  pr <- gatewayr:::add_script_errors(pr)
  expect_identical(call_route(pr, "GET", "/boom")[c("status", "body")], list(status = 503, body = "{\"mine\":[true]}"))
  expect_identical(call_route(pr, "GET", "/nope")[c("status", "body")], list(status = 410, body = "{\"gone\":[true]}"))
})

test_that("script_packages finds what a script loads, reaches into, or serializes with", {
  dir <- write_app(list(
    plumber.R = c(
      "library(promises)", "requireNamespace('digest', quietly = TRUE)", "pkg <- 'x'",
      "library(pkg, character.only = TRUE)", "x <- stats::median(1:3)",
      "#* @serializer csv", "#* @get /a", "function() data.frame(a = 1)",
      "#' @parser yaml", "#* @post /b", "function(req) req$body"
    ),
    entrypoint.R = c("pr('plumber.R') |> pr_cookie('k', 'n') |>",
                     "  pr_set_serializer(serializer_tsv())")
  ))
  found <- gatewayr::script_packages(dir)
  expect_identical(found$package, c("sodium", "readr", "yaml", "promises", "digest", "stats"))
  expect_identical(found$why, c("pr_cookie() (encrypted cookies)", "serializer_tsv()", "@parser yaml",
                                "library(promises)", "requireNamespace(digest)", "stats::median"))
  expect_identical(unique(found$file), c("entrypoint.R", "plumber.R"))
})

test_that("missing_script_packages lists only what is not installed; a parse error names the file", {
  dir <- write_app(list(plumber.R = c("library(stats)", "nopackage42::f()")))
  expect_identical(gatewayr::missing_script_packages(dir)$package, "nopackage42")
  broken <- write_app(list(plumber.R = "function( {"))
  expect_error(gatewayr::script_packages(broken), "R cannot parse plumber.R:1:11: unexpected '{'", fixed = TRUE)
})

test_that("the gateway's health route answers ahead of a script's auth filter", {
  pr <- plumber::pr() |>
    plumber::pr_filter("auth", function(req, res) {
      res$status <- 401
      list(error = "log in")
    }) |>
    plumber::pr_get("/private", function() "secret")
  pr <- gatewayr:::add_script_healthz(pr, "app.R")
  expect_identical(call_route(pr, "GET", "/private")$status, 401)
  health <- call_route(pr, "GET", "/__gateway/healthz")
  expect_identical(health$status, 200L)
  expect_identical(jsonlite::fromJSON(health$body)$status, "ok")
})

test_that("a script's predict route that calls problem() tells the gateway its status and type", {
  pr <- plumber::pr() |> plumber::pr_post("/predict", function() problem(409, "stale_features", "old"))
  pr <- gatewayr:::add_script_errors(pr)
  told <- call_route(pr, "POST", "/predict", list(HTTP_X_GATEWAY_PREDICT = "1"))
  expect_identical(jsonlite::fromJSON(told$body)$error,
                   list(code = "model_problem", message = "old", status = 409L, type = "stale_features"))
})
