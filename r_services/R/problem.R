#' Signal a problem the client should see by name
#'
#' Stops the model (or a script's predict route) with a condition of class
#' `gateway_problem`. The gateway answers the client with `status` and with `type` as the
#' error's code in every protocol's envelope (the problem+json `type` URL ends with it,
#' MLflow's `error_code` is it in upper case, v2's `error` starts with it), and counts it in
#' `gateway_model_problems_total{model,type}`.
#'
#' @param status the HTTP status: 400, 409, 422 or 503. Any other becomes 422, with a note
#'   in the detail.
#' @param type the problem's name, a token matching `[a-z][a-z0-9_]{0,63}`. Any other
#'   becomes `model_error`, with a note in the detail.
#' @param detail what a human should read: which row, column or value, and why.
#' @return Does not return: signals an error condition of class
#'   `c("gateway_problem", "error", "condition")`.
#' @examples
#' tryCatch(
#'   problem(status = 409, type = "stale_features", detail = "features older than 1 day"),
#'   gateway_problem = function(p) c(p$status, p$type)
#' )
#' @export
problem <- function(status = 422L, type = "model_error", detail = "") {
  stop(structure(
    class = c("gateway_problem", "error", "condition"),
    list(message = paste(detail, collapse = "\n"), call = sys.call(-1), status = status, type = type)
  ))
}

# The wire fields of a caught gateway_problem: one integer status and one string type, or
# null (the gateway then answers 422 model_error, saying why).
problem_fields <- function(condition) {
  status <- suppressWarnings(as.integer(condition$status))
  type <- condition$type
  list(
    status = if (length(status) == 1 && !is.na(status)) status else NULL,
    type = if (is.character(type) && length(type) == 1 && !is.na(type)) type else NULL
  )
}
