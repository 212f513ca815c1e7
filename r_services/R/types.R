# The values of `params.type` a model accepts, found once at registration and kept in model.json's
# outputs (as Python models keep theirs): "methods": [...], "default_method": "..." or null,
# "method_aliases": [...].

# The predict method R dispatches to for this model (its namespace must be loaded), or NULL.
predict_method <- function(model) {
  for (cls in class(model)) {
    method <- utils::getS3method("predict", cls, optional = TRUE)
    if (!is.null(method)) return(method)
  }
  NULL
}

# Does this piece of code mention the symbol `type` (type, tolower(type), ...)?
mentions_type <- function(code) {
  if (is.symbol(code)) return(identical(as.character(code), "type"))
  if (is.call(code)) return(any(vapply(as.list(code), mentions_type, NA)))
  FALSE
}

# String constants in a piece of code (c("a", "b") gives both).
string_constants <- function(code) {
  if (is.character(code)) return(code)
  if (is.call(code)) return(unlist(lapply(as.list(code)[-1], string_constants)))
  character(0)
}

# Strings the method's body compares `type` with: type == "x", type %in% c(...), match.arg(type,
# c(...)), charmatch(tolower(type), c(...)), switch(type, x = ...). Candidates, checked later.
compared_types <- function(code) {
  if (!is.call(code)) return(character(0))
  parts <- as.list(code)
  head <- if (is.symbol(parts[[1]])) as.character(parts[[1]]) else ""
  found <- character(0)
  if (head %in% c("==", "!=", "%in%", "match.arg", "charmatch", "pmatch", "identical") &&
      any(vapply(parts[-1], mentions_type, NA))) {
    found <- unlist(lapply(parts[-1], function(arg) if (mentions_type(arg)) character(0) else string_constants(arg)))
  } else if (head == "switch" && length(parts) > 2 && mentions_type(parts[[2]])) {
    found <- setdiff(names(parts)[-(1:2)], "")
  }
  unique(c(found, unlist(lapply(parts[-1], compared_types))))
}

# The candidate types in the predict method's own code: its `type` argument's default and the
# strings its body compares `type` with. A method without a `type` argument has none: a type
# would vanish silently into its `...`.
declared_types <- function(method) {
  if (!is.function(method) || !"type" %in% names(formals(method))) return(list(values = character(0)))
  default <- tryCatch(eval(formals(method)$type, baseenv()), error = function(e) NULL)
  default <- if (is.character(default)) default else character(0)
  values <- unique(c(default, compared_types(body(method))))
  list(values = values[nzchar(values)])
}

# The tidy prediction with this type, or NULL when it fails or is not one prediction per row.
try_type <- function(model, rows, type) {
  result <- tryCatch(suppressWarnings(predict_tidy(model, rows, type)), error = function(e) NULL)
  if (!is.null(result) && prediction_count(result) == nrow(rows)) result else NULL
}

#' The values of `params.type` a model accepts, checked on the first rows of its sample.
#'
#' Candidates come from the class's predict method (its `type` argument and the strings its code
#' compares `type` with); only those that predict one value per row of `rows` are kept. Two
#' gateway values are added when the class has no such type of its own: "response" (R's default
#' predict) and, for classifiers whose predict gives probabilities, "prob" (see [model_prob]).
#' @param model a fitted model or a function(newdata, type).
#' @param rows the first rows of the sample (a data.frame).
#' @param classes the model's class labels, or NULL.
#' @return list(values, default, aliases): every accepted value, the class's own default (NULL
#'   when its predict has no `type`), and which values are the gateway's aliases.
#' @noRd
find_types <- function(model, rows, classes = NULL) {
  if (is.function(model)) {
    values <- c("response", if (!is.null(classes)) "prob")
    return(list(values = I(values), default = "response", aliases = I(character(0))))
  }
  declared <- declared_types(predict_method(model))
  results <- lapply(stats::setNames(declared$values, declared$values), function(type) try_type(model, rows, type))
  values <- declared$values[!vapply(results, is.null, NA)]
  # The default is what predict gives without a type (rpart's depends on the tree's method).
  plain <- try_type(model, rows, NULL)
  default <- Find(function(type) identical(results[[type]], plain), values)
  aliases <- character(0)
  if (!"response" %in% values) aliases <- "response"
  if (!is.null(classes) && !"prob" %in% values) {
    prob <- tryCatch(model_prob(model, rows, classes, values), error = function(e) NULL)
    if (is.matrix(prob) && nrow(prob) == nrow(rows)) aliases <- c(aliases, "prob")
  }
  list(values = I(c(values, aliases)), default = default, aliases = I(aliases))
}

# model.json's outputs with the types added (unless given by hand).
with_types <- function(outputs, types) {
  if (is.null(outputs$methods)) {
    outputs$methods <- types$values
    outputs["default_method"] <- list(types$default)  # kept when NULL: JSON null
    outputs$method_aliases <- types$aliases
  }
  outputs$methods <- I(as.character(unlist(outputs$methods)))
  outputs$method_aliases <- I(as.character(unlist(outputs$method_aliases)))
  outputs
}

# The type spec of a loaded model: from model.json, or for one saved before types were recorded,
# what the gateway used to allow (both passed to predict as given).
type_spec <- function(meta) {
  outputs <- meta$outputs
  if (!is.null(outputs$methods)) {
    return(list(values = as.character(unlist(outputs$methods)), default = outputs$default_method,
                aliases = as.character(unlist(outputs$method_aliases))))
  }
  classifier <- identical(outputs$kind, "classification")
  list(values = c("response", if (classifier) "prob"), default = NULL, aliases = character(0))
}
