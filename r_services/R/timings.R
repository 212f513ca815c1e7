# Phase timings of one predict, returned to the gateway for its trace: the R worker sends them in
# the X-Gateway-R-Timings header (the rpy2 backend reads them from handle_predict's reply), and
# the gateway records them as child spans (gateway/tracing.py). So R needs no tracing library.

# A clock that measures the phases of one request, one lap() per phase, in the order they ran.
phase_clock <- function() {
  clock <- new.env(parent = emptyenv())
  clock$last <- as.numeric(Sys.time())  # microseconds; proc.time() counts whole milliseconds
  clock$ms <- numeric(0)
  clock
}

lap <- function(clock, phase) {
  now <- as.numeric(Sys.time())
  clock$ms[[phase]] <- (now - clock$last) * 1000
  clock$last <- now
  invisible(clock)
}

# "parse=0.120;validate=0.301;predict=1.250;encode=0.050" (milliseconds), "" before any lap.
format_timings <- function(ms) {
  if (length(ms) == 0) return("")
  paste(sprintf("%s=%.3f", names(ms), pmax(ms, 0)), collapse = ";")
}

with_timings <- function(out, clock) {
  out$timings <- format_timings(clock$ms)
  out
}

# R's phase timings as a response header for the gateway's trace; none when there are none.
timing_headers <- function(out) {
  if (is.null(out$timings) || !nzchar(out$timings)) return(list())
  list("X-Gateway-R-Timings" = out$timings)
}
