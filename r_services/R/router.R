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
body_text <- function(req) raw_text(req$bodyRaw)

# Raw body bytes as UTF-8 text; none is "".
raw_text <- function(raw) {
  if (is.null(raw) || length(raw) == 0) return("")
  text <- rawToChar(raw)
  Encoding(text) <- "UTF-8"
  text
}

# The predict body as handle_predict takes it: the raw bytes for the gateway's binary wire
# (read_binary_wire), else UTF-8 text (the JSON wire).
predict_body <- function(raw, content_type) {
  binary <- !is.null(content_type) && startsWith(content_type, BINARY_WIRE_TYPE)
  if (binary) raw %||% raw(0) else raw_text(raw)
}

# The reply's content type: a raw body is the binary wire's reply.
reply_type <- function(body) if (is.raw(body)) BINARY_WIRE_TYPE else "application/json"

# One predict, timed and logged: the Plumber route and the worker's direct route share it.
logged_predict <- function(loaded, body, request_id, timeout_s) {
  started <- as.numeric(Sys.time())
  out <- handle_predict(loaded, body, timeout_s)
  log_request(request_id, loaded$meta$name, out$rows,
              (as.numeric(Sys.time()) - started) * 1000, out$status, out$message)
  out
}

add_predict <- function(pr, loaded, timeout_s = Inf) {
  plumber::pr_post(pr, "/predict", function(req, res) {
    out <- logged_predict(loaded, predict_body(req$bodyRaw, req$CONTENT_TYPE), req$HTTP_X_REQUEST_ID, timeout_s)
    for (name in names(timing_headers(out))) res$setHeader(name, out$timings)  # for the gateway's trace
    send_json(res, out$status, out$body)
    res$setHeader("Content-Type", reply_type(out$body))
    res
  }, parsers = character(0))  # no parser at all: plumber's "none" fails on any body in 1.2.1
}

#' The generic worker's httpuv app: POST /predict answered directly, the rest by the router.
#'
#' Plumber's routing, its R6 request and response objects and its filters cost about 1 ms of
#' R CPU per 1-row predict on the project's 2-core box, as much as a glm's own predict, and
#' the gateway's hot route needs none of them (no parser, no serializer, no filter). Every
#' other request (health, metadata, a 404 or 405) goes through the Plumber router unchanged,
#' and the router keeps its own /predict route, which answers the same bytes.
#' @param pr the worker's router (model_router()).
#' @param loaded the loaded model.
#' @param timeout_s seconds a predict may run.
#' @return an httpuv app (a list with call, onHeaders, onWSOpen).
#' @noRd
predict_app <- function(pr, loaded, timeout_s = Inf) {
  list(
    call = function(req) {
      if (!identical(req$PATH_INFO, "/predict") || !identical(req$REQUEST_METHOD, "POST")) {
        return(pr$call(req))
      }
      body <- predict_body(req$rook.input$read(), req$CONTENT_TYPE)
      out <- tryCatch(logged_predict(loaded, body, req$HTTP_X_REQUEST_ID, timeout_s),
                      error = function(e) reply(500, error_json("internal", conditionMessage(e))))
      list(status = out$status, headers = c(list("Content-Type" = reply_type(out$body)), timing_headers(out)),
           body = out$body)
    },
    onHeaders = function(req) pr$onHeaders(req),
    onWSOpen = function(ws) pr$onWSOpen(ws)
  )
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
