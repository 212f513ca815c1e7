# The per-request log line: one JSON object per line on stderr, which supervisord keeps (and
# rotates) in the worker's log file, so one grep for a request id finds the R side of it.

# The gateway's rule for a request id; anything else is not logged raw.
REQUEST_ID_PATTERN <- "^[A-Za-z0-9._-]{1,128}$"

# perl = TRUE: R's default regex engine (TRE) builds a 128-fold automaton for `{1,128}` on every
# call, 7 ms per request on this project's 2-core box; PCRE takes microseconds.
sane_request_id <- function(id) {
  if (is.character(id) && length(id) == 1 && grepl(REQUEST_ID_PATTERN, id, perl = TRUE)) id else NA_character_
}

#' One request's log line as JSON.
#'
#' @param request_id the X-Request-ID header (NULL or insane → null).
#' @param model the model name.
#' @param rows rows in the request (NA when the body could not be read).
#' @param duration_ms time spent handling it.
#' @param status the HTTP status answered.
#' @param message R's condition message (or the validation message) on errors, else NULL.
#' @return a one-line JSON string.
#' @noRd
request_log_json <- function(request_id, model, rows, duration_ms, status, message = NULL,
                             time = Sys.time(), pid = Sys.getpid()) {
  # Built with sprintf, not jsonlite::toJSON: toJSON's dispatch cost 0.4 ms of R CPU per
  # request, a third of a 1-row predict. Only the model name and R's message need escaping
  # (a sane request id holds none of the characters JSON escapes).
  id <- sane_request_id(request_id)
  line <- sprintf(
    '{"time":"%s","source":"r_worker","pid":%d,"request_id":%s,"model":%s,"rows":%s,"duration_ms":%s,"status":%d',
    format(time, "%Y-%m-%dT%H:%M:%OS3Z", tz = "UTC"), as.integer(pid),
    if (is.na(id)) "null" else paste0('"', id, '"'), json_strings(model),
    if (is.na(rows)) "null" else as.character(as.integer(rows)),
    format(round(duration_ms, 3), digits = 15, scientific = FALSE), as.integer(status)
  )
  if (is.null(message)) paste0(line, "}") else paste0(line, ',"error":', json_strings(paste(message, collapse = "\n")), "}")
}

log_request <- function(...) cat(request_log_json(...), "\n", sep = "", file = stderr())
