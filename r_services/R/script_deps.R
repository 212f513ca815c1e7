# What a user's Plumber script needs from R's library, found without running it, so that a
# missing package fails `gateway register` and `gateway up` instead of the first request.

# Plumber's serializers and parsers whose work is done by a package Plumber only suggests.
PLUMBER_FORMAT_PACKAGES <- c(
  csv = "readr", tsv = "readr", feather = "arrow", parquet = "arrow",
  geojson = "geojsonsf", htmlwidget = "htmlwidgets", yaml = "yaml"
)
# Plumber's encrypted session cookies need sodium.
COOKIE_CALLS <- c("pr_cookie", "session_cookie")
LOADING_CALLS <- c("library", "require", "requireNamespace", "loadNamespace")
FORMAT_ANNOTATION <- "^\\s*#['*]\\s*@(serializer|parser)\\s+([A-Za-z0-9_]+)"

#' The packages a Plumber script's R files load or call, and why.
#'
#' Reads every .R file beside the script (an entrypoint.R sources its neighbours): `library()`,
#' `require()`, `requireNamespace()`, `pkg::f`, Plumber serializers or parsers that need a
#' suggested package (`#* @serializer csv`, `serializer_csv()`), and `pr_cookie()` (sodium).
#' @param path the script, its entrypoint.R, or its directory.
#' @return data.frame(package, file, why): one row per package, its first use.
#' @export
script_packages <- function(path) {
  dir <- if (dir.exists(path)) path else dirname(path)
  files <- sort(list.files(dir, pattern = "\\.[rR]$", full.names = TRUE))
  found <- do.call(rbind, c(
    list(data.frame(package = character(0), file = character(0), why = character(0))),
    lapply(files, file_packages)
  ))
  found[!duplicated(found$package), , drop = FALSE]
}

#' The packages a Plumber script needs that are not installed in this R.
#'
#' @inheritParams script_packages
#' @return the rows of script_packages() whose package is not installed.
#' @export
missing_script_packages <- function(path) {
  needs <- script_packages(path)
  installed <- vapply(needs$package, function(p) length(find.package(p, quiet = TRUE)) > 0, logical(1))
  needs[!installed, , drop = FALSE]
}

file_packages <- function(file) {
  lines <- readLines(file, warn = FALSE, encoding = "UTF-8")
  exprs <- tryCatch(parse(text = lines, keep.source = FALSE), error = function(e) {
    where <- sub("<text>", basename(file), conditionMessage(e), fixed = TRUE)  # <text>:1:11: → plumber.R:1:11:
    stop(paste("R cannot parse", gsub("\\s+", " ", where)), call. = FALSE)
  })
  uses <- list()
  record <- function(package, why) uses[[length(uses) + 1]] <<- c(package, why)
  for (hit in regmatches(lines, regexec(FORMAT_ANNOTATION, lines, perl = TRUE))) {
    if (length(hit) == 3 && hit[[3]] %in% names(PLUMBER_FORMAT_PACKAGES)) {
      record(PLUMBER_FORMAT_PACKAGES[[hit[[3]]]], sprintf("@%s %s", hit[[2]], hit[[3]]))
    }
  }
  for (expr in exprs) walk_calls(expr, record)
  if (length(uses) == 0) return(NULL)
  data.frame(package = vapply(uses, `[[`, "", 1), file = basename(file),
             why = vapply(uses, `[[`, "", 2))
}

# Visit every call in an expression, recording the packages it loads or reaches into.
walk_calls <- function(expr, record) {
  if (!is.call(expr)) return(invisible())
  head <- expr[[1]]
  if (is.name(head)) {
    fn <- as.character(head)
    if (fn %in% c("::", ":::") && length(expr) == 3) {
      record(as.character(expr[[2]]), paste0(as.character(expr[[2]]), fn, as.character(expr[[3]])))
    } else if (fn %in% LOADING_CALLS && length(expr) >= 2) {
      package <- loaded_package(expr)
      if (!is.null(package)) record(package, sprintf("%s(%s)", fn, package))
    } else if (fn %in% COOKIE_CALLS) {
      record("sodium", paste0(fn, "() (encrypted cookies)"))
    } else if (grepl("^(serializer|parser)_", fn)) {
      format <- sub("^(serializer|parser)_", "", fn)
      if (format %in% names(PLUMBER_FORMAT_PACKAGES)) record(PLUMBER_FORMAT_PACKAGES[[format]], paste0(fn, "()"))
    }
  }
  parts <- as.list(expr)
  for (i in seq_along(parts)) if (is.call(parts[[i]])) walk_calls(parts[[i]], record)
  invisible()
}

# The package a library()-like call names literally, or NULL (e.g. character.only = TRUE with a variable).
loaded_package <- function(call) {
  args <- as.list(call)[-1]
  named <- if (is.null(names(args))) rep("", length(args)) else names(args)
  position <- if ("package" %in% named) which(named == "package")[1] else which(named == "")[1]
  if (is.na(position)) return(NULL)
  arg <- args[[position]]
  if (is.character(arg) && length(arg) == 1) return(arg)
  if (is.name(arg) && !isTRUE(args$character.only)) return(as.character(arg))
  NULL
}
