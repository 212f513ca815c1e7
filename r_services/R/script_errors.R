# A user's script keeps Plumber's own error handling (or its own pr_set_error / pr_set_404):
# clients get what `pr_run(plumb(...))` would answer, e.g. {"error":"500 - Internal server
# error"} with R's message hidden. R's message goes to the worker's log with the request id.
#
# The one exception is the gateway's own predict call (the script's predict_route, sent with
# the X-Gateway-Predict header, which the public pass-through never forwards): the predict
# contract names what R said, so that call gets the wire format's {"error": {"code", "message"}}.

PREDICT_HEADER <- "HTTP_X_GATEWAY_PREDICT"

is_gateway_predict <- function(req) identical(req[[PREDICT_HEADER]], "1")

# Plumber has no getter for a router's handlers; R6 keeps them in the object's private env.
router_private <- function(pr) pr$.__enclos_env__$private

#' Wrap the error and 404 handlers of a script's router (and of every router mounted in it).
#'
#' @param pr the script's router.
#' @return `pr`, whose failed requests are logged with their request id.
#' @noRd
add_script_errors <- function(pr) {
  private <- router_private(pr)
  user_error <- private$errorHandler
  user_404 <- private$notFoundHandler
  pr$setErrorHandler(function(req, res, err) {
    message <- paste(conditionMessage(err), collapse = "\n")
    req$.gateway_error <- message
    log_line("request ", sane_request_id(req$HTTP_X_REQUEST_ID), ": error on ", req$REQUEST_METHOD,
             " ", req$PATH_INFO, ": ", message)
    if (!is_gateway_predict(req)) {
      return(user_error(req, res, err))
    }
    res$status <- 500L
    res$serializer <- serializer_passthrough()
    if (inherits(err, "gateway_problem")) return(error_json("model_problem", message, problem_fields(err)))
    error_json("model_error", message)
  })
  pr$set404Handler(function(req, res) {
    if (!is_gateway_predict(req)) {
      return(user_404(req, res))
    }
    res$status <- 404L
    res$serializer <- serializer_passthrough()
    error_json("not_found", sprintf("the script has no route %s %s", req$REQUEST_METHOD, req$PATH_INFO))
  })
  for (mounted in pr$mounts) {
    if (inherits(mounted, "Plumber")) add_script_errors(mounted)
  }
  invisible(pr)
}
