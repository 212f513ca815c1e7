# model.json's `outputs` and `framework`: what a model predicts and which packages it needs.

# Class labels of a classifier, or NULL for anything we serve as a regression.
model_classes <- function(model) {
  if (is.function(model)) return(NULL)
  if (inherits(model, "randomForest")) {
    return(if (identical(model$type, "classification")) as.character(model$classes) else NULL)
  }
  if (is.list(model) && is.character(model$classes)) return(model$classes)
  NULL
}

# `outputs` as given, or derived: {"kind": "classification", "classes": [...]} or regression.
infer_outputs <- function(model, outputs = NULL) {
  if (!is.null(outputs)) {
    if (!is.null(outputs$classes)) outputs$classes <- I(as.character(unlist(outputs$classes)))
    return(outputs)
  }
  classes <- model_classes(model)
  if (is.null(classes)) return(list(kind = "regression"))
  list(kind = "classification", classes = I(classes))
}

# Packages (not base R's own) whose code predicts with this model, with their versions.
# Found through the namespace that holds the model's predict method (or the function itself).
framework_packages <- function(model) {
  homes <- if (is.function(model)) {
    list(environment(model))
  } else {
    lapply(class(model), function(cls) {
      method <- utils::getS3method("predict", cls, optional = TRUE)
      if (is.null(method)) NULL else environment(method)
    })
  }
  names <- unique(unlist(lapply(homes, function(env) {
    if (is.environment(env) && isNamespace(env)) getNamespaceName(env) else NULL
  })))
  base <- rownames(utils::installed.packages(priority = "base"))
  names <- sort(setdiff(names, base))
  versions <- lapply(names, function(pkg) as.character(utils::packageVersion(pkg)))
  stats::setNames(versions, names)
}

# model.json's `framework`: the R version and the model's packages ({} when none).
framework_info <- function(model) {
  packages <- framework_packages(model)
  if (length(packages) == 0) packages <- stats::setNames(list(), character(0))
  list(r = as.character(getRversion()), packages = packages)
}
