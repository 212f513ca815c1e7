# A registered Plumber script's directory is checked before a worker runs the script.

script_version <- function() {
  dir <- tempfile("script")
  dir.create(file.path(dir, "data"), recursive = TRUE)
  writeLines(c("#* @get /hi", "function() 'hi'"), file.path(dir, "plumber.R"))
  writeLines("a,b", file.path(dir, "data", "coefficients.csv"))
  dir
}

write_meta <- function(dir, tree) {
  jsonlite::write_json(list(name = "cars", artefact = "plumber.R", tree_sha256 = tree),
                       file.path(dir, "model.json"), auto_unbox = TRUE)
}

test_that("a script named by path (no model.json) runs as written", {
  dir <- script_version()
  expect_true(check_script_dir(file.path(dir, "plumber.R")))
})

test_that("the recorded hash passes, and model.json itself is not part of it", {
  dir <- script_version()
  write_meta(dir, tree_sha256(dir))
  expect_true(check_script_dir(file.path(dir, "plumber.R")))
})

test_that("a changed file beside the script is refused before the script runs", {
  dir <- script_version()
  write_meta(dir, tree_sha256(dir))
  writeLines("a,b,c", file.path(dir, "data", "coefficients.csv"))
  expect_error(script_router(file.path(dir, "plumber.R")), "a file changed after the script was registered")
})

test_that("a registered script without a recorded hash is refused", {
  dir <- script_version()
  write_meta(dir, "")
  expect_error(check_script_dir(file.path(dir, "plumber.R")), "records no tree_sha256")
})
