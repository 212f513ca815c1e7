# The sample a model is saved with: predictors only, and the model must predict on it.

# Variables of the response of the model's formula (mpg for log(mpg) ~ .), or none.
response_variables <- function(model) {
  if (is.function(model)) return(character(0))
  formula <- tryCatch(stats::formula(model), error = function(e) NULL)
  if (!inherits(formula, "formula") || length(formula) != 3) return(character(0))
  all.vars(formula[[2]])
}

# The sample's predictor columns: write.csv()'s row names column (an empty name, or R's "X" when
# the formula does not use X) and the `target` column removed; a response column refused.
prepare_sample <- function(model, name, sample, target = NULL) {
  if (!is.data.frame(sample)) {
    stop("`sample` must be a data.frame with the model's predictor columns (a slice of the training data)",
         call. = FALSE)
  }
  columns <- names(sample)
  responses <- response_variables(model)
  if (length(columns) > 1 && (columns[[1]] == "" || columns[[1]] == "X" && length(responses) > 0 &&
                              !"X" %in% all.vars(stats::formula(model)))) {
    sample <- sample[-1]
  }
  if (!is.null(target)) {
    if (!is.character(target) || length(target) != 1 || !target %in% names(sample)) {
      stop(sprintf("target %s is not a column of the sample (columns: %s)", deparse(target),
                   paste(names(sample), collapse = ", ")), call. = FALSE)
    }
    sample <- sample[setdiff(names(sample), target)]
  }
  held <- intersect(responses, names(sample))
  if (length(held) > 0) {
    stop(sprintf(
      "the sample of model '%s' holds column '%s', the response of the model's formula (%s); a sample holds the predictors only: leave it out with target = \"%s\" (gateway register --target %s)",
      name, held[[1]], paste(deparse(stats::formula(model), width.cutoff = 500L), collapse = " "),
      held[[1]], held[[1]]
    ), call. = FALSE)
  }
  if (nrow(sample) == 0) stop(sprintf("the sample of model '%s' has no rows", name), call. = FALSE)
  sample
}

# R's own predict on the first rows of the sample: the model must answer one value per row that
# the wire can carry. Returns the untidied prediction (a factor tells a classifier).
check_predicts <- function(model, name, rows) {
  result <- tryCatch(suppressWarnings(model_predict(model, rows, NULL)), error = function(e) e)
  if (inherits(result, "error")) {
    stop(sprintf("model '%s' cannot predict on the first %d rows of its sample: %s", name, nrow(rows),
                 conditionMessage(result)), call. = FALSE)
  }
  tidy <- tryCatch(suppressWarnings(predict_tidy(model, rows, NULL)), error = function(e) e)
  if (!inherits(tidy, "error")) tidy <- tryCatch({
    encode_predictions(tidy)
    tidy
  }, error = function(e) e)
  if (inherits(tidy, "error")) {
    stop(sprintf("model '%s' predicts something the gateway cannot send: %s", name, conditionMessage(tidy)),
         call. = FALSE)
  }
  if (prediction_count(tidy) != nrow(rows)) {
    stop(sprintf("model '%s' returned %d predictions for the first %d rows of its sample", name,
                 prediction_count(tidy), nrow(rows)), call. = FALSE)
  }
  result
}
