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

add_script_healthz <- function(pr, script) {
  health <- to_json_object(list(status = "ok", pid = Sys.getpid(), script = script))
  plumber::pr_get(pr, "/__gateway/healthz", function(req, res) send_json(res, 200, health))
}

#' The router for an R user's own Plumber script, with the gateway's health route added.
#'
#' The script runs from its own directory, so it reads the files beside it by relative path.
#' An R error inside one of its routes answers 500 {"error": {"code": "model_error", ...}}.
#' @param script path to the user's plumber.R.
script_router <- function(script) {
  script <- normalizePath(script, mustWork = TRUE)
  check_script_dir(script)
  setwd(dirname(script))
  plumber::pr(script) |>
    add_script_healthz(script) |>
    add_request_log(Sys.getenv("GATEWAY_MODEL", basename(dirname(script)))) |>
    add_json_errors(error_code = "model_error") |>
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

# A user's script: one log line per request from Plumber's hooks (rows are unknown here, and
# R's message of a failed route is in the error handler's own line just before).
add_request_log <- function(pr, model) {
  pr |>
    plumber::pr_hook("preroute", function(req) {
      req$.gateway_started <- as.numeric(Sys.time())
    }) |>
    plumber::pr_hook("postserialize", function(req, res, value) {
      if (!identical(req$PATH_INFO, "/__gateway/healthz")) {
        started <- req$.gateway_started %||% as.numeric(Sys.time())
        log_request(req$HTTP_X_REQUEST_ID, model, NA_integer_,
                    (as.numeric(Sys.time()) - started) * 1000, res$status)
      }
      value
    })
}
