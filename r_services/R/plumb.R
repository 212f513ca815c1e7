# A user's own Plumber material → the router `pr_run(plumb(...))` would serve for it.

ENTRYPOINT_FILE <- "^entrypoint\\.r$"
# A line that makes plumb() build something: a route, filter, static mount or @plumber block.
PLUMBER_ANNOTATION <- "^\\s*#['*]\\s*@(get|put|post|delete|head|options|patch|use|filter|assets|plumber)\\b"

#' The router plumb() builds for a script, an entrypoint.R or a directory.
#'
#' A directory or an entrypoint.R: `plumb(dir = ...)`, i.e. the router entrypoint.R returns,
#' else the directory's plumber.R. An annotated script: `plumb(file)`. A script with no
#' annotations builds its router in code (`pr() |> pr_get(...)`): the router it returns, or the
#' one it hands to `pr_run()` (which is not run here: the gateway runs it).
#' The working directory becomes the script's own, as when a user starts it from there.
#' @param target path to the script, its entrypoint.R, or its directory.
#' @return a Plumber router, not yet running.
#' @noRd
plumb_target <- function(target) {
  target <- normalizePath(target, mustWork = TRUE)
  dir <- if (dir.exists(target)) target else dirname(target)
  setwd(dir)
  if (dir.exists(target) || grepl(ENTRYPOINT_FILE, basename(target), ignore.case = TRUE)) {
    return(plumber::plumb(dir = dir))
  }
  if (has_plumber_annotations(target)) {
    return(plumber::plumb(target))
  }
  source_router(target)
}

has_plumber_annotations <- function(file) {
  any(grepl(PLUMBER_ANNOTATION, readLines(file, warn = FALSE, encoding = "UTF-8"), perl = TRUE))
}

# Evaluate a script as plumb() evaluates entrypoint.R (a fresh environment under the global one)
# and take its router: the value it ends with, or the one given to an unqualified pr_run().
source_router <- function(file) {
  env <- new.env(parent = globalenv())
  env$pr_run <- function(pr, ...) {
    signalCondition(structure(class = c("gateway_pr_run", "condition"),
                              list(message = "pr_run", call = NULL, pr = pr)))
    invisible(pr)
  }
  pr <- withRestarts(
    withCallingHandlers(
      source(file, local = env, encoding = "UTF-8")$value,
      gateway_pr_run = function(cond) invokeRestart("gateway_router", cond$pr)
    ),
    gateway_router = function(pr) pr
  )
  if (!inherits(pr, "Plumber")) {
    stop(basename(file), " has no Plumber annotations (#* @get /path ...) and does not return ",
         "a Plumber router (pr() ...); give it routes, or end it with the router", call. = FALSE)
  }
  pr
}
