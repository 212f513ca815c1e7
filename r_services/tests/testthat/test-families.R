# Any R model with a predict method: the gateway answers what R's own predict() answers, for
# the class's default and every type model.json records; save_model checks what it saves.

source(repo_file("tests", "data", "r_families.R"))

# R's own predict, shaped as the wire carries it: a vector, or columns (a list result as
# as.data.frame() names its parts, a matrix by its column names, numbered when it has none).
own_predict <- function(model, newdata, type = NULL) {
  out <- if (is.null(type)) predict(model, newdata = newdata) else predict(model, newdata = newdata, type = type)
  if (is.list(out) && !is.data.frame(out)) out <- as.data.frame(out)
  if (is.matrix(out) && ncol(out) == 1) out <- out[, 1]
  if (is.matrix(out)) {
    if (is.null(colnames(out))) colnames(out) <- seq_len(ncol(out))
    out <- as.data.frame(out, optional = TRUE)
  }
  plain <- function(x) if (is.factor(x)) as.character(x) else unname(as.vector(x))
  if (is.data.frame(out)) lapply(as.list(out), plain) else plain(out)
}

# What a gateway alias means in R's own words, per family.
own_alias <- function(family, model, newdata, type, classes) {
  if (type == "response") return(own_predict(model, newdata))
  switch(family,
    multinom = own_predict(model, newdata, "probs"),
    lda = own_predict(model, newdata)[paste0("posterior.", classes)] |> stats::setNames(classes),
    glm_binomial = {
      p <- own_predict(model, newdata, "response")
      stats::setNames(list(1 - p, p), classes)
    },
    stop("no alias ", type, " expected for ", family)
  )
}

gateway_answer <- function(loaded, newdata, type = NULL) {
  out <- handle_predict(loaded, wire_request(newdata, params = if (!is.null(type)) list(type = type)))
  expect_identical(out$status, 200L, info = out$body)
  predictions <- parse_body(out$body)$predictions
  if (is.null(names(predictions))) unlist(predictions) else lapply(predictions, unlist)
}

families <- family_models()
newdata <- list(iris = iris[c(1, 60, 120, 150), 1:4], cars = family_cars()[c(1, 9, 20, 31), ])

for (family in names(families)) {
  test_that(paste("family", family, ": the default and every recorded type are R's own predict"), {
    entry <- families[[family]]
    dir <- save_model(entry$model, tempfile("store-"), family, entry$sample, target = entry$target)
    loaded <- load_model(dir)
    inputs <- vapply(loaded$inputs, `[[`, "", "name")
    rows <- if (all(inputs %in% names(iris))) newdata$iris[inputs] else newdata$cars[inputs]
    rownames(rows) <- NULL
    expect_identical(gateway_answer(loaded, rows), own_predict(entry$model, rows))
    outputs <- loaded$meta$outputs
    classes <- unlist(outputs$classes)
    for (type in unlist(outputs$methods)) {
      expected <- if (type %in% unlist(outputs$method_aliases)) own_alias(family, entry$model, rows, type, classes)
                  else own_predict(entry$model, rows, type)
      expect_identical(gateway_answer(loaded, rows, type), expected, info = paste(family, type))
    }
    # One row answers the same fields as a batch (a list result's parts are per row).
    one <- gateway_answer(loaded, rows[1, , drop = FALSE])
    if (is.list(one)) expect_identical(one, lapply(gateway_answer(loaded, rows), `[`, 1))
  })
}

test_that("the recorded types, defaults and classes of each family", {
  recorded <- lapply(families, function(entry) {
    dir <- save_model(entry$model, tempfile("store-"), "m", entry$sample, target = entry$target)
    meta <- jsonlite::fromJSON(file.path(dir, "model.json"), simplifyVector = FALSE)
    list(values = unlist(meta$outputs$methods), default = meta$outputs$default_method,
         classes = unlist(meta$outputs$classes))
  })
  species <- levels(iris$Species)
  expect_identical(recorded$rpart, list(values = c("vector", "prob", "class", "matrix", "response"),
                                        default = "prob", classes = species))
  expect_identical(recorded$multinom, list(values = c("class", "probs", "response", "prob"),
                                           default = "class", classes = species))
  expect_identical(recorded$lda, list(values = c("response", "prob"), default = NULL, classes = species))
  expect_identical(recorded$glm_binomial, list(values = c("link", "response", "terms", "prob"),
                                               default = "link", classes = c("auto", "manual")))
  expect_identical(recorded$gam$default, "link")
  expect_true(all(c("link", "response", "terms") %in% recorded$gam$values))
  expect_identical(recorded$random_forest, list(values = c("response", "prob", "vote", "class"),
                                               default = "response", classes = c("auto", "manual")))
})

test_that("a model whose predict returns a factor is a classifier", {
  model <- function(newdata, type) factor(ifelse(newdata$x > 0, "up", "down"), levels = c("down", "up"))
  dir <- save_model(model, tempfile("store-"), "updown", data.frame(x = c(-1, 2)))
  meta <- jsonlite::fromJSON(file.path(dir, "model.json"), simplifyVector = FALSE)
  expect_identical(meta$outputs[c("kind", "classes")], list(kind = "classification", classes = list("down", "up")))
})

test_that("save_model refuses a response column, honours target, drops write.csv's row names", {
  cars <- family_cars()
  fit <- lm(mpg ~ wt + hp, data = cars)
  expect_error(save_model(fit, tempfile("store-"), "economy", cars[c("mpg", "wt", "hp")]),
               "holds column 'mpg', the response of the model's formula \\(mpg ~ wt \\+ hp\\).*target = \"mpg\"")
  dir <- save_model(fit, tempfile("store-"), "economy", cars[c("mpg", "wt", "hp")], target = "mpg")
  meta <- jsonlite::fromJSON(file.path(dir, "model.json"), simplifyVector = FALSE)
  expect_identical(vapply(meta$inputs, `[[`, "", "name"), c("wt", "hp"))
  expect_error(save_model(fit, tempfile("store-"), "economy", cars[c("wt", "hp")], target = "price"),
               "target \"price\" is not a column of the sample \\(columns: wt, hp\\)")
  csv <- tempfile(fileext = ".csv")
  utils::write.csv(cars[c("wt", "hp")], csv)  # row names as a first, unnamed column
  sample <- utils::read.csv(csv, check.names = FALSE)
  expect_identical(names(sample)[[1]], "")
  dir <- save_model(fit, tempfile("store-"), "economy", sample)
  meta <- jsonlite::fromJSON(file.path(dir, "model.json"), simplifyVector = FALSE)
  expect_identical(vapply(meta$inputs, `[[`, "", "name"), c("wt", "hp"))
  # read.csv() with its defaults names that column "X": not a variable of the formula, so dropped
  dir <- save_model(fit, tempfile("store-"), "economy", utils::read.csv(csv))
  meta <- jsonlite::fromJSON(file.path(dir, "model.json"), simplifyVector = FALSE)
  expect_identical(vapply(meta$inputs, `[[`, "", "name"), c("wt", "hp"))
})

test_that("save_model refuses a model that cannot predict on its own sample, with R's message", {
  fit <- lm(mpg ~ wt + hp, data = mtcars)
  expect_error(save_model(fit, tempfile("store-"), "economy", mtcars["wt"]),
               "model 'economy' cannot predict on the first 5 rows of its sample: object 'hp' not found")
  store <- tempfile("store-")
  expect_error(save_model(function(newdata, type) 1, store, "short", data.frame(x = 1:3 + 0.5)),
               "model 'short' returned 1 predictions for the first 3 rows of its sample")
  expect_false(dir.exists(file.path(store, "short", "1")))
})

test_that("the packages a model needs are found in a fresh R where they are not attached", {
  rds <- tempfile(fileext = ".rds")
  saveRDS(families$gam$model, rds)
  code <- sprintf(paste0("m <- readRDS('%s'); stopifnot(!'mgcv' %%in%% loadedNamespaces()); ",
                         "cat(names(gatewayr:::framework_info(m)$packages))"), rds)
  out <- system2(file.path(R.home("bin"), "Rscript"), c("-e", shQuote(code)), stdout = TRUE)
  expect_identical(out, "mgcv")
})

test_that("a classifier whose predict gives a score, not probabilities, has no 'prob'", {
  assign("predict.scorer", function(object, newdata, ...) newdata$x / 4, envir = globalenv())
  withr::defer(rm("predict.scorer", envir = globalenv()))
  scorer <- structure(list(lev = c("no", "yes")), class = "scorer")
  dir <- save_model(scorer, tempfile("store-"), "scorer", data.frame(x = c(0.5, 2)))
  meta <- jsonlite::fromJSON(file.path(dir, "model.json"), simplifyVector = FALSE)
  expect_identical(meta$outputs, list(kind = "classification", classes = list("no", "yes"), methods = list("response"),
                                      default_method = NULL, method_aliases = list("response")))
  expect_error(model_prob(scorer, data.frame(x = 1), c("no", "yes")), "gives no class probabilities")
})

test_that("load_model finds the package of a model whose model.json names none (saved before)", {
  dir <- save_model(families$random_forest$model, tempfile("store-"), "forest",
                    families$random_forest$sample, target = "am")
  meta_path <- file.path(dir, "model.json")
  meta <- jsonlite::fromJSON(meta_path, simplifyVector = FALSE)
  meta$framework$packages <- structure(list(), names = character(0))
  writeLines(gatewayr:::to_json_object(meta), meta_path)
  code <- sprintf(paste0("loaded <- gatewayr::load_model('%s'); ",
                         "cat(gatewayr::handle_predict(loaded, '%s')$status)"), dir,
                  wire_request(family_cars()[1:2, c("wt", "hp")]))
  out <- system2(file.path(R.home("bin"), "Rscript"), c("-e", shQuote(code)), stdout = TRUE)
  expect_identical(out, "200")
})
