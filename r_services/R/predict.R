# One model family per branch: how to ask each kind of model for predictions.

# What a prediction result should look like on the wire: no names, factors as strings.
tidy_predictions <- function(result) {
  if (is.data.frame(result)) {
    result[] <- lapply(result, function(col) if (is.factor(col)) as.character(col) else col)
    rownames(result) <- NULL
    return(result)
  }
  if (is.matrix(result)) {
    rownames(result) <- NULL
    return(result)
  }
  if (is.factor(result)) result <- as.character(result)
  # A bare vector: drop names (and attributes like predict.lm's) but keep Date/POSIXct classes.
  if (inherits(result, c("Date", "POSIXct"))) return(stats::setNames(result, NULL))
  as.vector(result)
}

#' Predict with a loaded model.
#'
#' @param loaded the result of load_model().
#' @param frame the decoded data.frame.
#' @param params request params; `type` is "response" (default) or "prob" for classifiers.
#' @return a vector (one value per row) or a data.frame / matrix (multi-output).
predict_rows <- function(loaded, frame, params = list()) {
  model <- loaded$model
  type <- params[["type"]] %||% "response"
  result <- if (is.function(model)) {
    model(frame, type)
  } else if (inherits(model, "randomForest")) {
    stats::predict(model, frame, type = if (identical(type, "prob")) "prob" else "response")
  } else if (inherits(model, "glm")) {
    stats::predict(model, frame, type = "response")
  } else if (inherits(model, "lm")) {
    stats::predict(model, frame)
  } else {
    stats::predict(model, newdata = frame, type = type)
  }
  tidy_predictions(result)
}

# How many rows a prediction result covers.
prediction_count <- function(result) {
  if (is.data.frame(result) || is.matrix(result)) nrow(result) else length(result)
}
