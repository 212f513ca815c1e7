# Model families: how to ask one kind of model for predictions, its classes and probabilities.
# S3 generics with a default that fits most of R's predict methods, and one method per family
# that needs something else (as vetiver's handler_predict). A new family is one method here.

#' Model families: predict, classes and probabilities of one kind of model.
#'
#' The gateway asks every model through these S3 generics. The defaults fit most of R's
#' `predict` methods: `model_predict` calls `predict(model, newdata = newdata)`, with `type`
#' only when the client asked for one; `model_classes` reads a factor response or a
#' `lev`/`levels`/`classes`/`obsLevels` field; `model_prob` finds the class's own name for
#' probabilities (`prob`, `probs`, `posterior`, `raw`) or a probability matrix. A family that
#' needs something else is one method, e.g. `model_prob.glm` for a binomial glm's response scale.
#'
#' @param model a fitted model (or a `function(newdata, type)`).
#' @param newdata a data.frame of predictors.
#' @param type NULL for the class's own default, else a value its predict accepts.
#' @param classes the class labels, in order.
#' @param types the values of `type` the class's predict accepts (as found at registration).
#' @param ... unused; for methods.
#' @return `model_predict`: what the class's predict returns. `model_classes`: the class labels
#'   (character) or NULL for a model that is not a classifier. `model_prob`: a numeric matrix
#'   with one row per row of `newdata` and one column per class, named by class.
#' @name model_families
NULL

#' @rdname model_families
model_predict <- function(model, newdata, type = NULL, ...) UseMethod("model_predict")

#' @rdname model_families
model_predict.default <- function(model, newdata, type = NULL, ...) {
  if (is.null(type)) stats::predict(model, newdata = newdata)
  else stats::predict(model, newdata = newdata, type = type)
}

# A plain function is its own predict: function(newdata, type), "response" unless asked.
#' @rdname model_families
model_predict.function <- function(model, newdata, type = NULL, ...) model(newdata, type %||% "response")

#' @rdname model_families
model_classes <- function(model, ...) UseMethod("model_classes")

#' @rdname model_families
model_classes.default <- function(model, ...) {
  if (is.function(model)) return(NULL)
  field <- function(name) tryCatch(model[[name]], error = function(e) NULL)
  for (name in c("lev", "levels", "classes", "obsLevels")) {
    labels <- field(name)
    if ((is.character(labels) || is.factor(labels)) && length(labels) >= 2) return(as.character(labels))
  }
  labels <- attr(model, "ylevels")  # rpart's method = "class"
  if (is.character(labels) && length(labels) >= 2) return(labels)
  frame <- field("model")  # lm, glm, gam keep their model frame: is the response a factor?
  if (is.data.frame(frame) && ncol(frame) > 0 && is.factor(frame[[1]])) return(levels(frame[[1]]))
  NULL
}

# A randomForest keeps `classes` only when it classifies; regression and unsupervised have none.
#' @rdname model_families
model_classes.randomForest <- function(model, ...) {
  if (identical(model$type, "classification")) as.character(model$classes) else NULL
}

#' @rdname model_families
model_prob <- function(model, newdata, classes, types = character(0), ...) UseMethod("model_prob")

#' @rdname model_families
model_prob.default <- function(model, newdata, classes, types = character(0), ...) {
  native <- intersect(c("prob", "probs", "posterior", "raw"), types)
  if (length(native) > 0) return(probability_matrix(model_predict(model, newdata, native[[1]]), classes))
  # Without a type of its own, only a list part (MASS::lda's posterior) or a matrix with one
  # column per class: a plain number per row may be a score on any scale.
  result <- model_predict(model, newdata, NULL)
  if (is.list(result) && !is.data.frame(result) ||
      (is.matrix(result) || is.data.frame(result)) && setequal(colnames(result), classes)) {
    return(probability_matrix(result, classes))
  }
  stop("the model's predict gives no class probabilities", call. = FALSE)
}

# A binomial glm's response scale is the probability of the second level of its factor response.
#' @rdname model_families
model_prob.glm <- function(model, newdata, classes, types = character(0), ...) {
  if (!identical(stats::family(model)$family, "binomial")) return(NextMethod())
  probability_matrix(stats::predict(model, newdata = newdata, type = "response"), classes)
}

# Probabilities in any of the shapes predict methods give them → a matrix with class columns.
# A list (MASS::lda) holds them as `posterior`/`prob`/`probs`; a two-class model may give one
# column or a vector: the probability of the second class.
probability_matrix <- function(result, classes) {
  if (is.list(result) && !is.data.frame(result)) {
    held <- intersect(c("posterior", "prob", "probs"), names(result))
    if (length(held) == 0) stop("the model's predict gives no class probabilities", call. = FALSE)
    result <- result[[held[[1]]]]
  }
  if (is.data.frame(result)) result <- as.matrix(result)
  if (is.matrix(result) && ncol(result) == 1) result <- result[, 1]
  if (!is.matrix(result)) {
    if (!is.numeric(result) || length(classes) != 2) {
      stop("the model's predict gives no class probabilities", call. = FALSE)
    }
    result <- cbind(1 - as.vector(result), as.vector(result))
    colnames(result) <- classes
  }
  if (!is.numeric(result)) stop("the model's predict gives no class probabilities", call. = FALSE)
  if (is.null(colnames(result)) && ncol(result) == length(classes)) colnames(result) <- classes
  if (!setequal(colnames(result), classes)) {
    stop(sprintf("the model's probabilities have columns %s, not its classes %s",
                 paste(colnames(result), collapse = ", "), paste(classes, collapse = ", ")), call. = FALSE)
  }
  result <- result[, classes, drop = FALSE]
  if (any(result < 0 | result > 1, na.rm = TRUE)) {
    stop("the model's predict gives values outside [0, 1], not class probabilities", call. = FALSE)
  }
  result
}
