# ISO-8601 dates and times as the gateway sends them, to and from R, always in UTC.

# "2024-02-29T13:45:07Z", with optional fraction and a Z or ±HH:MM offset (none means UTC)
# → POSIXct in UTC; a bare date is its midnight (as Python's fromisoformat reads it); NA for
# anything else. Vectorised over character.
parse_datetime <- function(text) {
  bare_date <- !is.na(text) & grepl("^[0-9]{4}-[0-9]{2}-[0-9]{2}$", text)
  text[bare_date] <- paste0(text[bare_date], "T00:00:00Z")
  pattern <- "^([0-9]{4}-[0-9]{2}-[0-9]{2})[T ]([0-9]{2}:[0-9]{2}(:[0-9]{2}(\\.[0-9]+)?)?)(Z|[+-][0-9]{2}:?[0-9]{2})?$"
  ok <- !is.na(text) & grepl(pattern, text)
  out <- rep(NA_real_, length(text))
  if (any(ok)) {
    parts <- regmatches(text[ok], regexec(pattern, text[ok]))
    clock <- vapply(parts, function(p) if (nzchar(p[[4]])) p[[3]] else paste0(p[[3]], ":00"), "")
    day <- vapply(parts, `[[`, "", 2)
    local <- as.POSIXct(strptime(paste(day, clock), "%Y-%m-%d %H:%M:%OS", tz = "UTC"))
    offset <- vapply(parts, function(p) offset_seconds(p[[6]]), 0)
    out[ok] <- as.numeric(local) - offset
  }
  as.POSIXct(out, origin = "1970-01-01", tz = "UTC")
}

offset_seconds <- function(zone) {
  if (zone %in% c("", "Z")) return(0)
  digits <- gsub("[^0-9]", "", zone)
  sign <- if (startsWith(zone, "-")) -1 else 1
  sign * (as.numeric(substr(digits, 1, 2)) * 3600 + as.numeric(substr(digits, 3, 4)) * 60)
}

# Date → "YYYY-MM-DD". Not format(x, "%Y-%m-%d"): %Y writes the year 999 as "999".
format_date <- function(x) {
  parts <- as.POSIXlt(x, tz = "UTC")
  out <- sprintf("%04d-%02d-%02d", parts$year + 1900L, parts$mon + 1L, parts$mday)
  out[is.na(x)] <- NA_character_
  out
}

# POSIXct → "YYYY-MM-DDTHH:MM:SSZ" in UTC, with microseconds only when there is a fraction.
# The fraction is rounded to the microsecond: format()'s %OS6 truncates, so .002 (held as
# .00199999...) came back as .001999; and %Y writes years before 1000 without leading zeros.
format_datetime <- function(x) {
  seconds <- as.numeric(x)
  whole <- floor(seconds)
  micros <- round((seconds - whole) * 1e6)
  carry <- !is.na(micros) & micros >= 1e6
  whole[carry] <- whole[carry] + 1
  micros[carry] <- 0
  parts <- as.POSIXlt(whole, origin = "1970-01-01", tz = "UTC")
  out <- sprintf("%04d-%02d-%02dT%02d:%02d:%02d%sZ", parts$year + 1900L, parts$mon + 1L, parts$mday,
                 parts$hour, parts$min, as.integer(parts$sec),
                 ifelse(!is.na(micros) & micros > 0, sprintf(".%06d", as.integer(micros)), ""))
  out[is.na(seconds)] <- NA_character_
  out
}
