# model.json's `outputs` and `framework`: what a model predicts and which packages it needs.

# `outputs` as given, or derived: {"kind": "classification", "classes": [...]} or regression.
# A model is a classifier when its family says so (model_classes) or its predict gave a factor.
infer_outputs <- function(model, outputs = NULL, prediction = NULL) {
  if (!is.null(outputs)) {
    if (!is.null(outputs$classes)) outputs$classes <- I(as.character(unlist(outputs$classes)))
    return(outputs)
  }
  classes <- model_classes(model)
  if (is.null(classes) && is.factor(prediction)) classes <- levels(prediction)
  if (is.null(classes)) return(list(kind = "regression"))
  list(kind = "classification", classes = I(classes))
}

# Every installed package's registered predict methods: a table with columns class and package.
installed_predict_methods <- function() {
  installed <- utils::installed.packages()[, c("Package", "LibPath"), drop = FALSE]
  rows <- lapply(seq_len(nrow(installed)), function(i) {
    methods <- tryCatch(parseNamespaceFile(installed[i, "Package"], installed[i, "LibPath"])$S3methods,
                        error = function(e) NULL)
    if (is.null(methods) || nrow(methods) == 0) return(NULL)
    classes <- methods[methods[, 1] == "predict", 2]
    if (length(classes) == 0) NULL else data.frame(class = classes, package = installed[i, "Package"])
  })
  do.call(rbind, c(list(data.frame(class = character(0), package = character(0))), rows))
}

# The package whose predict method serves this class: the loaded one, else an installed package
# that registers predict.<class> in its NAMESPACE (a model read with readRDS() has not loaded it).
predict_home <- function(cls, methods) {
  method <- utils::getS3method("predict", cls, optional = TRUE)
  if (!is.null(method)) {
    env <- environment(method)
    return(if (is.environment(env) && isNamespace(env)) getNamespaceName(env) else NULL)
  }
  homes <- methods()$package[methods()$class == cls]
  if (length(homes) == 0) NULL else homes[[1]]
}

# Packages (not base R's own) whose code predicts with this model, with their versions, and the
# `extra` ones the model says it needs; each is loaded, so predict dispatches to it. Found through
# the namespace that holds the model's predict methods (or the function itself), searched among
# installed packages when not loaded.
framework_packages <- function(model, extra = character(0)) {
  names <- if (is.function(model)) {
    env <- environment(model)
    if (is.environment(env) && isNamespace(env)) getNamespaceName(env) else NULL
  } else {
    table <- NULL
    methods <- function() {
      if (is.null(table)) table <<- installed_predict_methods()
      table
    }
    unlist(lapply(class(model), predict_home, methods = methods))
  }
  base <- rownames(utils::installed.packages(priority = "base"))
  names <- sort(setdiff(unique(c(names, as.character(extra))), base))
  for (pkg in names) {
    if (!requireNamespace(pkg, quietly = TRUE)) {
      stop(sprintf("the model needs the R package '%s', which does not load", pkg), call. = FALSE)
    }
  }
  versions <- lapply(names, function(pkg) as.character(utils::packageVersion(pkg)))
  stats::setNames(versions, names)
}

# model.json's `framework`: the R version and the model's packages ({} when none).
framework_info <- function(model, extra = character(0)) {
  packages <- framework_packages(model, extra)
  if (length(packages) == 0) packages <- stats::setNames(list(), character(0))
  list(r = as.character(getRversion()), packages = packages)
}
