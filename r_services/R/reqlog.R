# The per-request log line: one JSON object per line on stderr, which supervisord keeps (and
# rotates) in the worker's log file, so one grep for a request id finds the R side of it.
# Lines leave in batches (one cat() each, GATEWAY_LOG_FLUSH_MS after the first line of a batch;
# server.log_flush_ms): supervisord spends ~120 us of CPU per write it reads, once per request
# otherwise. Other lines (log_line: start-up, R's errors) are written at once.

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

# The batch waiting to be written: lines, their bytes, and whether a flush is scheduled.
request_log <- new.env(parent = emptyenv())
request_log$lines <- character()
request_log$bytes <- 0
request_log$scheduled <- FALSE

REQUEST_LOG_MAX_BYTES <- 65536  # a batch this big is written at once, without waiting

# Seconds a batch waits: GATEWAY_LOG_FLUSH_MS (the gateway sets it from server.log_flush_ms),
# read once per process; 0 writes each line at once.
request_log_delay_s <- function() {
  if (is.null(request_log$delay_s)) {
    ms <- suppressWarnings(as.numeric(Sys.getenv("GATEWAY_LOG_FLUSH_MS", "100")))
    request_log$delay_s <- if (is.na(ms) || ms < 0) 0.1 else ms / 1000
  }
  request_log$delay_s
}

log_request <- function(...) {
  line <- request_log_json(...)
  delay <- request_log_delay_s()
  if (delay <= 0) return(invisible(cat(line, "\n", sep = "", file = stderr())))
  request_log$lines[length(request_log$lines) + 1L] <- line
  request_log$bytes <- request_log$bytes + nchar(line, "bytes") + 1
  if (request_log$bytes >= REQUEST_LOG_MAX_BYTES) {
    flush_request_log()
  } else if (!request_log$scheduled) {
    # httpuv's service loop runs later's callbacks (measured: 100.3-100.9 ms for 100 ms asked).
    request_log$scheduled <- TRUE
    later::later(flush_request_log, delay)
  }
  invisible()
}

# Write the buffered request lines now, in one cat(): the scheduled callback, and run_router's
# exit. A pending callback that finds nothing to write does nothing.
flush_request_log <- function() {
  request_log$scheduled <- FALSE
  lines <- request_log$lines
  if (length(lines) == 0) return(invisible())
  request_log$lines <- character()
  request_log$bytes <- 0
  cat(paste0(lines, "\n", collapse = ""), file = stderr())
  invisible()
}
