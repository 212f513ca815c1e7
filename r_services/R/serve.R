# Running a router: the generic model worker, or an R user's own Plumber script.

#' Serve one stored model version (the generic worker). Blocks.
#'
#' @param dir a version directory, `<store>/<name>/<version>`.
#' @param host,port where to listen (loopback only: the gateway's NGINX is in front), or host
#'   `unix:<path>` for a Unix domain socket (port unused); served as the gateway serves every worker (a Unix socket host uses httpuv's pipe server).
#' @param timeout_s seconds a predict may run before R stops it (the model's `timeout_s`).
serve_model <- function(dir, host = "127.0.0.1", port = 8000L, timeout_s = Inf) {
  started <- Sys.time()
  jit_off()
  loaded <- compile_model(load_model(dir))
  pr <- model_router(dir, loaded, timeout_s)
  log_line(sprintf("serving model '%s' version %s from %s on %s (loaded in %.2f s)",
                   loaded$meta$name, loaded$meta$version, loaded$dir, listen_url(host, port),
                   as.numeric(difftime(Sys.time(), started, units = "secs"))))
  run_router(pr, host, port, app = predict_app(pr, loaded, timeout_s))
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
#' @noRd
script_router <- function(script) {
  script <- normalizePath(script, mustWork = TRUE)
  check_script_dir(script)
  plumb_target(script) |>
    add_script_healthz(script) |>
    add_request_log(Sys.getenv("GATEWAY_MODEL", basename(dirname(script)))) |>
    add_script_errors() |>
    plumber::pr_set_docs(FALSE)
}

#' Serve an R user's own Plumber script as written. Blocks.
#'
#' @param script path to the user's plumber.R.
#' @param host,port where to listen, or host `unix:<path>` for a Unix domain socket.
serve_script <- function(script, host = "127.0.0.1", port = 8000L) {
  pr <- script_router(script)
  log_line(sprintf("serving Plumber script %s on %s", normalizePath(script), listen_url(host, port)))
  run_router(pr, host, port)
}

#' Turn R's JIT compiler off for the rest of this generic worker's life.
#'
#' The JIT byte-compiles closures when they first run. Everything a generic worker runs per
#' request is package code, byte-compiled when the package was installed (the model's own
#' function is compiled by compile_model); what the JIT compiles here is Plumber's router and
#' its R6 objects, one copy per object. Measured per worker (demo `lm`, 2-core box): start-up
#' CPU 0.45 s -> 0.32 s, the first request through the router 40 ms -> 10 ms, 5 MB less private
#' memory after warm-up, and the same R CPU per predict (1.85-1.95 ms over 3000 requests).
#' A user's Plumber script keeps the JIT: its routes are the user's own R code.
#' @return the level the JIT had, invisibly.
#' @noRd
jit_off <- function() {
  invisible(compiler::enableJIT(0))
}

#' A model that is an R function of the user's own is byte-compiled once, as the JIT would.
#' @noRd
compile_model <- function(loaded) {
  if (typeof(loaded$model) == "closure") loaded$model <- compiler::cmpfun(loaded$model)
  loaded
}

listen_url <- function(host, port) {
  if (startsWith(host, "unix:")) host else sprintf("http://%s:%d", host, as.integer(port))
}

#' Serve a router until the process is stopped. Blocks.
#'
#' A host `unix:<path>` serves it on a Unix domain socket (httpuv's pipe server), as the
#' gateway's stack does: the socket's private directory keeps other local users out, where a
#' loopback port would let any of them call the worker without an API key. Otherwise host:port
#' (Kubernetes pods, a worker run by hand): a user's script through `plumber::pr_run()`, as
#' written; the generic worker's `predict_app()` through httpuv, as on a socket.
#' @param pr a Plumber router (an httpuv app).
#' @param app the httpuv app to serve: the router itself, or one that hands it most requests.
#' @noRd
run_router <- function(pr, host, port, app = pr) {
  # Request lines still buffered (reqlog.R) leave when the loop ends: on an error or an interrupt.
  # supervisord's SIGTERM ends R at once, without on.exit: see docs/observability.md for why that
  # loses nothing when the gateway stops (R workers stop last, after the batch's delay).
  on.exit(flush_request_log(), add = TRUE)
  unix <- startsWith(host, "unix:")
  if (!unix && identical(app, pr)) {
    return(plumber::pr_run(pr, host = host, port = as.integer(port), docs = FALSE, quiet = TRUE))
  }
  # What pr_run() sets up before httpuv::runServer(); debug stays as the router has it.
  pr$.__enclos_env__$private$maxSize <- getOption("plumber.maxRequestSize", 0)
  if (unix) {
    path <- sub("^unix:", "", host)
    unlink(path)  # left by a worker that crashed: binding over it would fail
    # mask 007: owner and group (the gateway's NGINX) may connect; the directory is private too.
    server <- httpuv::startPipeServer(path, mask = strtoi("007", 8L), app = app)
  } else {
    server <- httpuv::startServer(host, as.integer(port), app = app)
  }
  on.exit({
    httpuv::stopServer(server)
    pr$.__enclos_env__$private$runHooks("exit")
  }, add = TRUE)
  repeat httpuv::service(timeoutMs = 1000)
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
