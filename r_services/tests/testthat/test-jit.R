# A worker builds its router with R's JIT compiler off (start-up CPU) and serves with the level
# it had before (requests run compiled code as they always did).

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

test_that("without_jit turns the JIT off for its expression and restores the level, even on error", {
  local_jit(2)
  expect_identical(without_jit(jit_level()), 0L)
  expect_identical(jit_level(), 2L)
  expect_error(without_jit(stop("a broken router")), "a broken router")
  expect_identical(jit_level(), 2L)
})

test_that("serve_model builds its router without the JIT and serves with the previous level", {
  local_jit(3)
  seen <- list()
  build <- local_replace("model_router", function(...) stop("replaced below"))
  utils::assignInNamespace("model_router", function(...) {
    seen$build <<- jit_level()
    build(...)
  }, "gatewayr")
  local_replace("run_router", function(pr, host, port, app = pr) seen$serve <<- jit_level())
  frame <- cars_frame()
  dir <- save_model(lm(mpg ~ wt, data = frame), tempfile("store-"), "jit", frame["wt"])
  capture.output(serve_model(dir, "unix:/nowhere.sock", 0L), type = "message")
  expect_identical(seen, list(build = 0L, serve = 3L))
})

test_that("serve_script builds the user's router without the JIT and serves with the previous level", {
  local_jit(3)
  seen <- list()
  build <- local_replace("script_router", function(script) stop("replaced below"))
  utils::assignInNamespace("script_router", function(script) {
    seen$build <<- jit_level()
    build(script)
  }, "gatewayr")
  local_replace("run_router", function(pr, host, port, app = pr) seen$serve <<- jit_level())
  dir <- tempfile("script")
  dir.create(dir)
  writeLines(c("#* @get /hi", "function() 'hi'"), file.path(dir, "plumber.R"))
  old <- getwd()
  withr::defer(setwd(old))  # plumb() works from the script's directory, as a user's run would
  capture.output(serve_script(file.path(dir, "plumber.R"), "unix:/nowhere.sock", 0L), type = "message")
  expect_identical(seen, list(build = 0L, serve = 3L))
})
