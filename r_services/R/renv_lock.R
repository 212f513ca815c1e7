# renv.lock for the R side, from what is installed (Debian's r-cran-* packages; no CRAN here).

# The packages and their recursive hard dependencies, less base and recommended R. A recommended
# package asked for by name (rpart, MASS, ...) is locked: Debian ships it apart from R itself.
lock_packages <- function(packages, db) {
  deps <- tools::package_dependencies(packages, db = db, which = c("Depends", "Imports", "LinkingTo"),
                                      recursive = TRUE)
  everything <- unique(c(packages, unlist(deps, use.names = FALSE)))
  core <- rownames(db)[!is.na(db[, "Priority"]) & db[, "Priority"] %in% c("base", "recommended")]
  sort(setdiff(everything, c("R", setdiff(core, packages))))
}

#' Write an renv.lock describing the installed versions of some packages and their deps.
#'
#' @param path where to write, e.g. "renv.lock".
#' @param packages the top-level packages the project uses.
#' @return the path, invisibly.
write_renv_lock <- function(path, packages) {
  db <- utils::installed.packages()
  db <- db[!duplicated(db[, "Package"]), , drop = FALSE]
  rownames(db) <- db[, "Package"]
  absent <- setdiff(packages, rownames(db))
  if (length(absent) > 0) {
    stop(sprintf("not installed: %s; install the Debian packages r-cran-%s first",
                 paste(absent, collapse = ", "), paste(tolower(absent), collapse = ", r-cran-")),
         call. = FALSE)
  }
  entries <- lapply(lock_packages(packages, db), function(pkg) {
    list(Package = pkg, Version = unname(db[pkg, "Version"]), Source = "Repository", Repository = "Debian")
  })
  names(entries) <- vapply(entries, `[[`, "", "Package")
  lock <- list(
    R = list(
      Version = as.character(getRversion()),
      Repositories = list(list(Name = "Debian", URL = "https://deb.debian.org/debian"))
    ),
    Packages = entries
  )
  writeLines(to_json_object(lock, pretty = TRUE), path, useBytes = TRUE)
  invisible(path)
}
