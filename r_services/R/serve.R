# Running a router: the generic model worker, or an R user's own Plumber script.

#' Serve one stored model version (the generic worker). Blocks.
#'
#' @param dir a version directory, `<store>/<name>/<version>`.
#' @param host,port where to listen (loopback only: the gateway's NGINX is in front), or host
#'   `unix:<path>` for a Unix domain socket (port unused); served as the gateway serves every worker (a Unix socket host uses httpuv's pipe server).
#' @param timeout_s seconds a predict may run before R stops it (the model's `timeout_s`).
serve_model <- function(dir, host = "127.0.0.1", port = 8000L, timeout_s = Inf) {
  started <- Sys.time()
  built <- without_jit({
    loaded <- load_model(dir)
    list(loaded = loaded, pr = model_router(dir, loaded, timeout_s))
  })
  loaded <- built$loaded
  pr <- built$pr
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
  pr <- without_jit(script_router(script))
  log_line(sprintf("serving Plumber script %s on %s", normalizePath(script), listen_url(host, port)))
  run_router(pr, host, port)
}

#' Evaluate `expr` with R's JIT compiler off, then restore the level it had.
#'
#' The JIT byte-compiles a closure the first time it runs. Building a router runs hundreds of
#' closures once and never again (Plumber's R6 objects, route parsing): compiling them cost
#' about a quarter of a worker's start-up CPU (0.44 s against 0.32 s with R_ENABLE_JIT=0),
#' while five workers start at once on the stack's cores. Requests are served with the JIT back
#' at its previous level, so what runs per request is compiled as before.
#' @noRd
without_jit <- function(expr) {
  level <- compiler::enableJIT(0)
  on.exit(compiler::enableJIT(level), add = TRUE)
  expr
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
