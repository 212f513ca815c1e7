# save_model writes immutable numbered versions; load_model reads them back and checks them.

new_store <- function() {
  store <- tempfile("store-")
  dir.create(store)
  store
}

predictors <- function() cars_frame()[c("wt", "hp", "cyl", "am")]

test_that("each save is a new version, numbered from 1, with no scratch left behind", {
  store <- new_store()
  fit <- lm(mpg ~ wt + hp + cyl + am, data = cars_frame())
  first <- save_model(fit, store, "mtcars", predictors(), description = "fuel economy")
  second <- save_model(fit, store, "mtcars", predictors())
  expect_identical(basename(first), "1")
  expect_identical(basename(second), "2")
  expect_setequal(list.files(file.path(store, "mtcars"), all.files = TRUE, no.. = TRUE), c("1", "2"))
  expect_setequal(list.files(first), c("model.rds", "model.json"))
})

test_that("the store is private to its owner: 0700 directories, 0600 files", {
  store <- new_store()
  Sys.chmod(store, "0755", use_umask = FALSE)
  old <- Sys.umask("000")
  on.exit(Sys.umask(old), add = TRUE)
  dir <- save_model(lm(mpg ~ wt, data = cars_frame()), store, "mtcars", predictors()["wt"])
  modes <- function(paths) format(file.info(paths)$mode)
  expect_identical(modes(c(store, dirname(dir), dir)), rep("700", 3))
  expect_identical(modes(list.files(dir, full.names = TRUE)), c("600", "600"))
  expect_identical(format(Sys.umask(NA)), "0")  # the caller's umask is back
})

test_that("model.json holds the contract's fields, with the schema from the sample", {
  store <- new_store()
  sample <- predictors()
  sample$hp[3] <- NA
  dir <- save_model(lm(mpg ~ wt + hp + cyl + am, data = cars_frame()), store, "mtcars", sample,
                    description = "fuel economy")
  meta <- jsonlite::fromJSON(file.path(dir, "model.json"), simplifyVector = FALSE)
  expect_identical(names(meta), c("name", "version", "language", "format", "artefact", "description",
                                  "inputs", "outputs", "sha256", "created_at", "framework", "reference"))
  # drift's reference distributions (reference.R): every column, the missing hp counted
  expect_identical(names(meta$reference$columns), c("wt", "hp", "cyl", "am"))
  expect_equal(meta$reference$columns$hp$null_share, 1 / nrow(sample))
  expect_identical(sort(names(meta$reference$columns$am$levels)), c("auto", "manual"))
  expect_identical(meta[c("name", "version", "language", "format", "artefact", "description")],
                   list(name = "mtcars", version = "1", language = "r", format = "rds",
                        artefact = "model.rds", description = "fuel economy"))
  expect_identical(meta$inputs, list(
    list(name = "wt", type = "double", levels = NULL, nullable = FALSE),
    list(name = "hp", type = "double", levels = NULL, nullable = TRUE),
    list(name = "cyl", type = "integer", levels = NULL, nullable = FALSE),
    list(name = "am", type = "factor", levels = list("auto", "manual"), nullable = FALSE)
  ))
  expect_identical(meta$outputs, list(kind = "regression", methods = list("response", "terms"),
                                      default_method = "response", method_aliases = list()))
  sha <- strsplit(system2("sha256sum", shQuote(file.path(dir, "model.rds")), stdout = TRUE), " ")[[1]][[1]]
  expect_identical(meta$sha256, sha)
  expect_match(meta$created_at, "^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}Z$")
  expect_identical(meta$framework$r, as.character(getRversion()))
  expect_match(paste(readLines(file.path(dir, "model.json")), collapse = "\n"), "\"packages\": \\{\\}")
})

test_that("every column type maps to its wire type; a one-level factor keeps an array", {
  sample <- data.frame(
    d = 1.5, i = 2L, b = TRUE, s = "x", f = factor("only"), day = as.Date("2024-02-29"),
    t = as.POSIXct("2024-02-29 13:45:07", tz = "UTC"), stringsAsFactors = FALSE
  )
  dir <- save_model(function(newdata, type) rep(1, nrow(newdata)), new_store(), "types", sample)
  meta <- jsonlite::fromJSON(file.path(dir, "model.json"), simplifyVector = FALSE)
  types <- vapply(meta$inputs, `[[`, "", "type")
  expect_identical(types, c("double", "integer", "logical", "string", "factor", "date", "datetime"))
  expect_identical(meta$inputs[[5]]$levels, list("only"))
  expect_error(save_model(identity, new_store(), "bad", data.frame(x = I(list(1)))), "cannot carry")
  expect_error(save_model(identity, new_store(), "../escape", sample), "not usable as a directory")
})

test_that("a classifier's outputs name its classes and its package", {
  set.seed(1)
  frame <- cars_frame()
  forest <- randomForest::randomForest(am ~ mpg + hp, data = frame, ntree = 20)
  dir <- save_model(forest, new_store(), "transmission", frame[c("mpg", "hp")])
  meta <- jsonlite::fromJSON(file.path(dir, "model.json"), simplifyVector = FALSE)
  expect_identical(meta$outputs[c("kind", "classes")], list(kind = "classification", classes = list("auto", "manual")))
  expect_identical(meta$framework$packages,
                   list(randomForest = as.character(packageVersion("randomForest"))))
})

test_that("packages the model says it needs join the ones its predict comes from", {
  dir <- save_model(lm(mpg ~ wt, data = mtcars), new_store(), "needs", mtcars["wt"], packages = c("rpart", "stats"))
  meta <- jsonlite::fromJSON(file.path(dir, "model.json"), simplifyVector = FALSE)
  expect_identical(meta$framework$packages, list(rpart = as.character(packageVersion("rpart"))))  # base R left out
  expect_error(save_model(lm(mpg ~ wt, data = mtcars), new_store(), "needs", mtcars["wt"], packages = "notapkg"),
               "needs the R package 'notapkg'")
})

test_that("load_model round-trips the model and builds the zero-row prototype", {
  fit <- lm(mpg ~ wt + hp + cyl + am, data = cars_frame())
  dir <- save_model(fit, new_store(), "mtcars", predictors())
  loaded <- load_model(dir)
  expect_identical(loaded$meta$name, "mtcars")
  expect_identical(predict(loaded$model, cars_frame()), predict(fit, cars_frame()))
  expect_identical(nrow(loaded$prototype), 0L)
  expect_identical(names(loaded$prototype), c("wt", "hp", "cyl", "am"))
  expect_identical(levels(loaded$prototype$am), c("auto", "manual"))
  expect_type(loaded$prototype$cyl, "integer")
})

test_that("load_model refuses an artefact that changed after it was saved", {
  dir <- save_model(lm(mpg ~ wt, data = mtcars), new_store(), "mtcars", mtcars["wt"])
  saveRDS(lm(mpg ~ hp, data = mtcars), file.path(dir, "model.rds"))
  expect_error(load_model(dir), "sha256 .* but model.json records")
  expect_error(load_model(tempfile()), "model.json does not exist")
})
