# What R's predict returns → one prediction per row, in the shapes the wire format carries.

# One column per per-row part of a list result (MASS::lda's class, posterior and x), named as
# as.data.frame() names them: "class", "posterior.setosa", ... Parts that are not per row
# (a scalar such as predict.lm's df) are left out.
list_to_frame <- function(result, n) {
  columns <- list()
  for (name in names(result) %||% as.character(seq_along(result))) {
    part <- result[[name]]
    if (is.null(part) || NROW(part) != n || is.list(part) && !is.data.frame(part)) next
    if (is.matrix(part) || is.data.frame(part)) {
      labels <- colnames(part) %||% as.character(seq_len(ncol(part)))
      for (j in seq_len(ncol(part))) columns[[paste0(name, ".", labels[[j]])]] <- part[, j]
    } else {
      columns[[name]] <- part
    }
  }
  if (length(columns) == 0) {
    stop(sprintf("the model's predict returned a list with no part holding one value per row (parts: %s)",
                 paste(names(result), collapse = ", ")), call. = FALSE)
  }
  data.frame(lapply(columns, tidy_vector), check.names = FALSE, stringsAsFactors = FALSE)
}

# A bare vector without names or attributes (predict.lm's names, mgcv's 1-d array); factors as
# labels; Date/POSIXct keep their class.
tidy_vector <- function(x) {
  if (is.factor(x)) return(as.character(x))
  if (inherits(x, c("Date", "POSIXct"))) return(stats::setNames(x, NULL))
  as.vector(x)
}

# A prediction result as the wire carries it: a vector (one value per row) or a data.frame /
# matrix (one column per output, per-row objects on the public side). A one-column matrix is
# one value per row.
tidy_predictions <- function(result, n = NULL) {
  if (is.list(result) && !is.data.frame(result)) result <- list_to_frame(result, n %||% NROW(result[[1]]))
  if (is.data.frame(result)) {
    result[] <- lapply(result, function(col) if (is.factor(col)) as.character(col) else col)
    rownames(result) <- NULL
    return(result)
  }
  if (is.matrix(result)) {
    if (ncol(result) == 1) return(tidy_vector(result[, 1]))
    attributes(result) <- list(dim = dim(result), dimnames = list(NULL, colnames(result)))
    return(result)
  }
  tidy_vector(result)
}

# model_predict with one type, tidied. A list result for one row cannot tell per-row parts from
# scalars (both have length 1): predict that row twice and keep the first, so a one-row
# request has the same fields as a batch.
predict_tidy <- function(model, frame, type) {
  result <- model_predict(model, frame, type)
  if (is.list(result) && !is.data.frame(result) && nrow(frame) == 1) {
    return(tidy_predictions(model_predict(model, frame[c(1, 1), , drop = FALSE], type), 2)[1, , drop = FALSE])
  }
  tidy_predictions(result, nrow(frame))
}

#' Predict with a loaded model.
#'
#' Without `params$type`, R's own `predict(model, newdata)` for the model's class (no type is
#' forced). A type is passed to predict as given, except the gateway's two aliases recorded in
#' model.json: "response" (R's default, for classes without a response type) and "prob" (class
#' probabilities, keyed by class, for classifiers whose predict names them otherwise).
#' @param loaded the result of load_model().
#' @param frame the decoded data.frame.
#' @param params request params: `type` is one of the values model.json records.
#' @return a vector (one value per row) or a data.frame / matrix (one column per output).
predict_rows <- function(loaded, frame, params = list()) {
  model <- loaded$model
  type <- params[["type"]]
  spec <- type_spec(loaded$meta)
  if (!is.null(type) && type %in% spec$aliases) {
    if (identical(type, "prob")) {
      classes <- as.character(unlist(loaded$meta$outputs$classes))
      return(tidy_predictions(model_prob(model, frame, classes, setdiff(spec$values, spec$aliases))))
    }
    type <- NULL  # "response" stands for R's default
  }
  predict_tidy(model, frame, type)
}

# How many rows a prediction result covers.
prediction_count <- function(result) {
  if (is.data.frame(result) || is.matrix(result)) nrow(result) else length(result)
}
