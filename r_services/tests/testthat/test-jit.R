# The generic worker serves with R's JIT compiler off (start-up CPU and memory; its per-request
# code is byte-compiled package code); a user's function model is compiled once at load, and a
# user's Plumber script keeps the JIT.

jit_level <- function() compiler::enableJIT(-1)  # a negative level only reads it

# Replace a function of the gatewayr namespace for the calling test, put back after it.
local_replace <- function(name, fn, env = parent.frame()) {
  original <- get(name, envir = asNamespace("gatewayr"))
  utils::assignInNamespace(name, fn, "gatewayr")
  withr::defer(utils::assignInNamespace(name, original, "gatewayr"), envir = env)
  original
}

local_jit <- function(level, env = parent.frame()) {
  previous <- compiler::enableJIT(level)
  withr::defer(compiler::enableJIT(previous), envir = env)
}

serving_with <- function(serve) {
  seen <- list()
  local_replace("run_router", function(pr, host, port, app = pr) seen$jit <<- jit_level(), env = parent.frame())
  capture.output(serve(), type = "message")
  seen$jit
}

test_that("serve_model builds its router and serves with the JIT off", {
  local_jit(3)
  frame <- cars_frame()
  dir <- save_model(lm(mpg ~ wt, data = frame), tempfile("store-"), "jit", frame["wt"])
  built <- NULL
  router <- local_replace("model_router", function(...) stop("replaced below"))
  utils::assignInNamespace("model_router", function(...) {
    built <<- jit_level()
    router(...)
  }, "gatewayr")
  expect_identical(serving_with(function() serve_model(dir, "unix:/nowhere.sock", 0L)), 0L)
  expect_identical(built, 0L)
})

test_that("a model that is the user's own R function is byte-compiled at load, attributes kept", {
  model <- structure(function(newdata) newdata$x * 2, note = "kept")
  loaded <- compile_model(list(model = model))
  expect_true(any(grepl("<bytecode", capture.output(print(loaded$model)), fixed = TRUE)))
  expect_false(any(grepl("<bytecode", capture.output(print(model)), fixed = TRUE)))
  expect_identical(attr(loaded$model, "note"), "kept")
  expect_identical(loaded$model(data.frame(x = 2)), 4)
  fitted <- lm(mpg ~ wt, data = cars_frame())
  expect_identical(compile_model(list(model = fitted))$model, fitted)  # not a function: as it was
})

test_that("a user's Plumber script is served with the JIT as it was", {
  local_jit(3)
  dir <- tempfile("script")
  dir.create(dir)
  writeLines(c("#* @get /hi", "function() 'hi'"), file.path(dir, "plumber.R"))
  old <- getwd()
  withr::defer(setwd(old))  # plumb() works from the script's directory, as a user's run would
  expect_identical(serving_with(function() serve_script(file.path(dir, "plumber.R"), "unix:/nowhere.sock", 0L)), 3L)
})
