# An R client for the gateway's native surface: a data.frame in, predictions out (httr + jsonlite).

#' Predict with a model served by the gateway.
#'
#' Sends `data` as the columnar form `{"inputs": {"col": [...]}, "params": {...}}` to
#' `POST <url>/models/<model>[/versions/<version>]/predict`, with every double at full
#' precision, integers as integers, factors as their labels, dates as ISO-8601 and NA as null.
#'
#' @param url the gateway's base URL, e.g. "http://127.0.0.1:8080".
#' @param model the model's name.
#' @param data a data.frame, one row per prediction.
#' @param type NULL (the model's default), "response" or "prob" (class probabilities).
#' @param version NULL for the current version, else a version or alias.
#' @param api_key NULL, or a key sent as `Authorization: Bearer <key>`.
#' @param timeout seconds to wait for the reply.
#' @return a vector with one prediction per row (NA where the model gave none), or for
#'   multi-output models (probabilities) a data.frame with one column per output. The model
#'   version that answered is the attribute "version".
#' @section Errors: a failed request stops with a condition of class `gateway_error` whose
#'   message is the gateway's own detail (e.g. "column 'wt' is missing") and whose `status`
#'   field is the HTTP status.
gateway_predict <- function(url, model, data, type = NULL, version = NULL, api_key = NULL, timeout = 30) {
  if (!requireNamespace("httr", quietly = TRUE)) {
    stop("gateway_predict needs the httr package: install.packages(\"httr\")", call. = FALSE)
  }
  if (!is.data.frame(data)) stop("`data` must be a data.frame, one row per prediction", call. = FALSE)
  path <- if (is.null(version)) sprintf("/models/%s/predict", model)
          else sprintf("/models/%s/versions/%s/predict", model, version)
  body <- paste0("{\"inputs\":", json_columns(data),
                 if (!is.null(type)) paste0(",\"params\":{\"type\":", json_strings(type), "}"), "}")
  headers <- c(`Content-Type` = "application/json", Accept = "application/json")
  if (!is.null(api_key)) headers[["Authorization"]] <- paste("Bearer", api_key)
  reply <- httr::POST(paste0(sub("/+$", "", url), path), body = body, encode = "raw",
                      httr::add_headers(.headers = headers), httr::timeout(timeout))
  parsed <- gateway_content(reply)
  structure(predictions_from_json(parsed$predictions), version = parsed$version)
}

#' Parse a gateway reply made with httr, or stop with the gateway's own words.
#'
#' `httr::content(reply, as = "parsed")` cannot parse `application/problem+json` (the native
#' routes' errors): it stops with "No automatic parser available". This parses any gateway
#' reply instead: a success comes back as a list (`simplifyVector = FALSE`); an error of any
#' protocol (problem+json's `detail`, MLflow's `message`, Open Inference v2's `error`) stops
#' with a condition of class `gateway_error`.
#'
#' @param reply an httr response, e.g. from
#'   `httr::POST(url, body = list(inputs = list(wt = 2.62)), encode = "json")`.
#' @return the parsed JSON body of a 2xx reply.
#' @section Errors: the condition's message is the gateway's detail and the status, e.g.
#'   "column 'wt' is missing (HTTP 422)"; its fields `status`, `detail` and `body` (the parsed
#'   error body, or NULL when it was not JSON) let a handler tell errors apart:
#'   `tryCatch(gateway_content(reply), gateway_error = function(e) e$status)`.
gateway_content <- function(reply) {
  text <- httr::content(reply, as = "text", encoding = "UTF-8")
  parsed <- tryCatch(jsonlite::fromJSON(text, simplifyVector = FALSE), error = function(e) NULL)
  status <- httr::status_code(reply)
  if (status >= 300L) {
    detail <- error_detail(parsed) %||% text
    stop(structure(class = c("gateway_error", "error", "condition"),
                   list(message = sprintf("%s (HTTP %d)", detail, status), call = NULL, status = status,
                        detail = detail, body = parsed)))
  }
  parsed
}

# The human words of an error body, whichever protocol wrote it; NULL when there are none.
error_detail <- function(parsed) {
  if (!is.list(parsed)) return(NULL)
  for (field in c("detail", "message", "error")) {
    if (is.character(parsed[[field]]) && length(parsed[[field]]) == 1) return(parsed[[field]])
  }
  NULL
}

# The reply's `predictions` (one element per row) → a vector, or a data.frame for objects.
predictions_from_json <- function(elements) {
  if (length(elements) > 0 && all(vapply(elements, is.list, TRUE))) {
    keys <- unique(unlist(lapply(elements, names)))
    columns <- lapply(keys, function(key) scalars(lapply(elements, `[[`, key)))
    return(as.data.frame(stats::setNames(columns, keys), optional = TRUE, stringsAsFactors = FALSE))
  }
  scalars(elements)
}

# A list of JSON scalars (NULL for null) → an atomic vector with NA for the nulls.
scalars <- function(values) {
  missing <- vapply(values, is.null, TRUE)
  values[missing] <- NA
  unlist(values, use.names = FALSE)
}
