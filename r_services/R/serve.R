# Running a router: the generic model worker, or an R user's own Plumber script.

#' Serve one stored model version (the generic worker). Blocks.
#'
#' @param dir a version directory, `<store>/<name>/<version>`.
#' @param host,port where to listen (loopback only: the gateway's NGINX is in front).
#' @param timeout_s seconds a predict may run before R stops it (the model's `timeout_s`).
serve_model <- function(dir, host = "127.0.0.1", port = 8000L, timeout_s = Inf) {
  started <- Sys.time()
  loaded <- load_model(dir)
  pr <- model_router(dir, loaded, timeout_s)
  log_line(sprintf("serving model '%s' version %s from %s on http://%s:%d (loaded in %.2f s)",
                   loaded$meta$name, loaded$meta$version, loaded$dir, host, as.integer(port),
                   as.numeric(difftime(Sys.time(), started, units = "secs"))))
  plumber::pr_run(pr, host = host, port = as.integer(port), docs = FALSE, quiet = TRUE)
}

# The gateway's health route, ahead of the script's own filters (an auth filter must not
# refuse it).
add_script_healthz <- function(pr, script) {
  health <- to_json_object(list(status = "ok", pid = Sys.getpid(), script = script))
  filters <- pr$filters
  handler <- function(req, res) send_json(res, 200, health)
  if (length(filters) == 0) return(plumber::pr_get(pr, "/__gateway/healthz", handler))
  plumber::pr_get(pr, "/__gateway/healthz", handler, preempt = filters[[1]]$name)
}

#' The router for an R user's own Plumber material, with the gateway's health route added.
#'
#' Built as `plumb()` builds it (see plumb_target), with `library(plumber)` attached by the
#' entrypoint, so it answers as `pr_run(plumb(...))` would, errors included (add_script_errors).
#' @param script path to the user's plumber.R, entrypoint.R, or their directory.
script_router <- function(script) {
  script <- normalizePath(script, mustWork = TRUE)
  plumb_target(script) |>
    add_script_healthz(script) |>
    add_request_log(Sys.getenv("GATEWAY_MODEL", basename(dirname(script)))) |>
    add_script_errors() |>
    plumber::pr_set_docs(FALSE)
}

#' Serve an R user's own Plumber script as written. Blocks.
#'
#' @param script path to the user's plumber.R.
#' @param host,port where to listen.
serve_script <- function(script, host = "127.0.0.1", port = 8000L) {
  pr <- script_router(script)
  log_line(sprintf("serving Plumber script %s on http://%s:%d", normalizePath(script), host, as.integer(port)))
  plumber::pr_run(pr, host = host, port = as.integer(port), docs = FALSE, quiet = TRUE)
}

# A user's script: one log line per request from Plumber's hooks (rows are unknown here; R's
# message of a failed route, hidden from the client, is in it and in the line just before).
add_request_log <- function(pr, model) {
  pr |>
    plumber::pr_hook("preroute", function(req) {
      req$.gateway_started <- as.numeric(Sys.time())
    }) |>
    plumber::pr_hook("postserialize", function(req, res, value) {
      if (!identical(req$PATH_INFO, "/__gateway/healthz")) {
        started <- req$.gateway_started %||% as.numeric(Sys.time())
        log_request(req$HTTP_X_REQUEST_ID, model, NA_integer_,
                    (as.numeric(Sys.time()) - started) * 1000, res$status, req$.gateway_error)
      }
      value
    })
}
