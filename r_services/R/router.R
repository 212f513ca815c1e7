# The generic worker's Plumber router, built from small router-in/router-out steps.

# Write a JSON body and status straight to the response; returning `res` skips serializers.
send_json <- function(res, status, body) {
  res$status <- as.integer(status)
  res$setHeader("Content-Type", "application/json")
  res$body <- body
  res
}

# Pass a ready JSON string through untouched (for the error and 404 handlers, whose
# return value plumber hands to the response's serializer).
serializer_passthrough <- function() {
  function(val, req, res, errorHandler) {
    res$setHeader("Content-Type", "application/json")
    res$body <- val
    res$toResponse()
  }
}

# The request body as UTF-8 text (plumber's raw body, not a guessed parse of it).
body_text <- function(req) {
  raw <- req$bodyRaw
  if (is.null(raw) || length(raw) == 0) return("")
  text <- rawToChar(raw)
  Encoding(text) <- "UTF-8"
  text
}

add_predict <- function(pr, loaded, timeout_s = Inf) {
  plumber::pr_post(pr, "/predict", function(req, res) {
    started <- as.numeric(Sys.time())
    out <- handle_predict(loaded, body_text(req), timeout_s)
    log_request(req$HTTP_X_REQUEST_ID, loaded$meta$name, out$rows,
                (as.numeric(Sys.time()) - started) * 1000, out$status, out$message)
    if (nzchar(out$timings)) res$setHeader("X-Gateway-R-Timings", out$timings)  # for the gateway's trace
    send_json(res, out$status, out$body)
  }, parsers = character(0))  # no parser at all: plumber's "none" fails on any body in 1.2.1
}

add_healthz <- function(pr, loaded) {
  health <- to_json_object(list(
    status = "ok", pid = Sys.getpid(), model = loaded$meta$name,
    version = loaded$meta$version, r_version = as.character(getRversion())
  ))
  plumber::pr_get(pr, "/healthz", function(req, res) send_json(res, 200, health))
}

add_metadata <- function(pr, loaded) {
  metadata <- to_json_object(c(loaded$meta, list(prototype = loaded$meta$inputs)))
  plumber::pr_get(pr, "/metadata", function(req, res) send_json(res, 200, metadata))
}

# Every failure answers JSON {"error": {"code", "message"}}; the process carries on.
add_json_errors <- function(pr, error_code = "internal") {
  pr |>
    plumber::pr_set_error(function(req, res, err) {
      log_line("error on ", req$REQUEST_METHOD, " ", req$PATH_INFO, ": ", conditionMessage(err))
      res$status <- 500L
      res$setHeader("Content-Type", "application/json")
      res$serializer <- serializer_passthrough()
      error_json(error_code, conditionMessage(err))
    }) |>
    plumber::pr_set_404(function(req, res) {
      res$status <- 404L
      res$setHeader("Content-Type", "application/json")
      res$serializer <- serializer_passthrough()
      error_json("not_found", sprintf("no route %s %s", req$REQUEST_METHOD, req$PATH_INFO))
    })
}

#' The generic worker's router for one stored model version.
#'
#' Routes: POST /predict (the wire format), GET /healthz, GET /metadata. No docs.
#' @param dir a version directory.
#' @param loaded the loaded model (defaults to load_model(dir)).
#' @param timeout_s seconds a predict may run before R stops it (Inf: no limit).
#' @return a Plumber router, not yet running.
model_router <- function(dir, loaded = load_model(dir), timeout_s = Inf) {
  plumber::pr() |>
    add_predict(loaded, timeout_s) |>
    add_healthz(loaded) |>
    add_metadata(loaded) |>
    add_json_errors() |>
    plumber::pr_set_docs(FALSE)
}
