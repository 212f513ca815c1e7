# The protocol-free core of POST /predict: body text in, status and JSON body out.

# `rows` (when the body was readable) and `message` (on errors) feed the request log line.
reply <- function(status, body, rows = NA_integer_, message = NULL) {
  list(status = as.integer(status), body = body, rows = as.integer(rows), message = message)
}

fail <- function(status, code, message, rows = NA_integer_, fields = list()) {
  reply(status, error_json(code, message, fields), rows = rows, message = paste(message, collapse = "\n"))
}

# The values `type` may take for this model, as model.json records them (see find_types).
allowed_types <- function(meta) type_spec(meta)$values

# A 400 message for the first bad param, or NULL.
params_problem <- function(params, meta) {
  if (!is.list(params) || (length(params) > 0 && is.null(names(params)))) {
    return("'params' must be an object, e.g. {\"type\": \"response\"}")
  }
  unknown <- setdiff(names(params), "type")
  if (length(unknown) > 0) {
    return(sprintf("unknown param '%s' for model '%s'; allowed: type", unknown[[1]], meta$name))
  }
  type <- params[["type"]]
  allowed <- allowed_types(meta)
  if (!is.null(type) && !(is.character(type) && length(type) == 1 && type %in% allowed)) {
    return(sprintf("param 'type' of model '%s' must be one of: %s; got %s",
                   meta$name, paste(allowed, collapse = ", "), show_value(type)))
  }
  NULL
}

# A 400 message when the body is not the wire shape, or NULL.
shape_problem <- function(request, inputs) {
  if (!is_json_object(request) || !is_json_object(request[["columns"]]) && !identical(request[["columns"]], list())) {
    return("the body must be an object {\"columns\": {...}, \"types\": {...}, \"params\": {...}}")
  }
  for (name in names(request[["columns"]])) {
    if (!is.list(request[["columns"]][[name]]) || is_json_object(request[["columns"]][[name]])) {
      return(sprintf("column '%s' must be an array of values", name))
    }
  }
  lengths <- unique(lengths(request[["columns"]]))
  if (length(lengths) > 1) return("all columns must hold the same number of values")
  declared_problem(request[["types"]] %||% list(), inputs)
}

# A 400 message when a column's declared type is not the model's, or NULL.
declared_problem <- function(declared, inputs) {
  for (spec in inputs) {
    type <- declared[[spec$name]]
    if (!is.null(type) && !identical(type, spec$type)) {
      return(sprintf("column '%s' is declared %s but the model expects %s", spec$name, show_value(type), spec$type))
    }
  }
  NULL
}

# Run the model; warnings are logged, not raised; errors come back as the condition.
# A finite timeout_s stops the model once it has run that long (R checks the limit while it
# evaluates R code: a loop stops, a long native call or Sys.sleep does not), so the worker is free
# for the next request at once instead of waiting for the watchdog to recycle it.
safely_predict <- function(loaded, frame, params, timeout_s = Inf) {
  if (is.finite(timeout_s)) {
    setTimeLimit(elapsed = timeout_s, transient = TRUE)
    on.exit(setTimeLimit(elapsed = Inf), add = TRUE)
  }
  tryCatch(
    withCallingHandlers(
      predict_rows(loaded, frame, params),
      warning = function(w) {
        log_line("warning while predicting: ", conditionMessage(w))
        invokeRestart("muffleWarning")
      }
    ),
    error = function(e) e
  )
}

#' Handle one wire request for a loaded model.
#'
#' @param loaded the result of load_model().
#' @param body_text the request body: JSON text (the wire format), or a raw vector in the binary
#'   wire layout (read_binary_wire), whose 200 reply is binary too (a raw vector).
#' @param timeout_s seconds the model may run (the model's `timeout_s`); Inf for no limit.
#' @return list(status, body, rows, message, timings): 200 with the predictions; 400 bad_request (malformed JSON,
#'   wrong shape, unknown param); 422 invalid_input (the data don't fit the schema);
#'   422 model_error (R raised; its message unchanged); 422 model_problem (the model called
#'   problem(); the error carries its status and type too); 504 timeout (the model ran past
#'   timeout_s and R stopped it); 500 internal (the model broke the one-prediction-per-row
#'   contract, or the reply could not be encoded). `timings` says how long each phase took
#'   ("parse=0.120;validate=0.301;predict=1.250;encode=0.050", milliseconds), for the gateway's trace.
handle_predict <- function(loaded, body_text, timeout_s = Inf) {
  clock <- phase_clock()
  # timeout_s bounds the whole call, not only predict: parsing and validating a huge body can
  # take longer than the model itself (a 1e6-row request ran 30 s with timeout_s = 10).
  deadline <- proc.time()[["elapsed"]] + timeout_s
  arm_until(deadline)
  on.exit(setTimeLimit(elapsed = Inf), add = TRUE)
  out <- tryCatch(handle_in_time(loaded, body_text, deadline, clock), error = function(e) e)
  late <- proc.time()[["elapsed"]] >= deadline
  # A step that turns R errors into a 400/422 may have caught the time limit's error itself.
  if (!inherits(out, "error") && (out$status == 200L || !late)) return(with_timings(out, clock))
  if (late) {
    return(with_timings(fail(504, "timeout", sprintf("model '%s' did not answer within its timeout of %s s",
                                                     loaded$meta$name, format(timeout_s, digits = 6))), clock))
  }
  with_timings(fail(500, "internal", conditionMessage(out)), clock)
}

# A time limit that fires at `deadline` (proc.time elapsed seconds); none when it is infinite.
arm_until <- function(deadline) {
  if (is.finite(deadline)) {
    setTimeLimit(elapsed = max(0.01, deadline - proc.time()[["elapsed"]]), transient = TRUE)
  }
}

handle_in_time <- function(loaded, body_text, deadline, clock = phase_clock()) {
  meta <- loaded$meta
  binary <- is.raw(body_text)
  request <- tryCatch(if (binary) read_binary_wire(body_text) else jsonlite::fromJSON(body_text, simplifyVector = FALSE),
                      error = function(e) e)
  lap(clock, "parse")
  if (inherits(request, "error")) {
    if (proc.time()[["elapsed"]] >= deadline) stop(request)
    what <- if (binary) "the binary body is not readable: " else "the body is not valid JSON: "
    return(fail(400, "bad_request", paste0(what, conditionMessage(request))))
  }
  problem <- if (binary) declared_problem(request[["types"]], loaded$inputs) else shape_problem(request, loaded$inputs)
  problem <- problem %||% params_problem(request[["params"]] %||% list(), meta)
  if (!is.null(problem)) return(fail(400, "bad_request", problem))
  rows <- if (length(request[["columns"]]) > 0) length(request[["columns"]][[1]]) else 0L
  frame <- fast_frame(request[["columns"]], loaded$inputs, if (binary) vector_column else fast_column)
  if (is.null(frame)) {  # something unusual: check value by value, and name the first problem
    values <- if (binary) as_json_values(request[["columns"]]) else request[["columns"]]
    check <- validate_frame(values, loaded$inputs, meta$name)
    if (check$status != 200L) return(fail(422, "invalid_input", check$detail, rows))
    frame <- columns_to_frame(values, request[["types"]] %||% list(), loaded$inputs)
  }
  params <- request[["params"]] %||% list()
  lap(clock, "validate")
  result <- safely_predict(loaded, frame, params, max(0.01, deadline - proc.time()[["elapsed"]]))
  lap(clock, "predict")
  if (inherits(result, "error") && proc.time()[["elapsed"]] >= deadline) stop(result)
  arm_until(deadline)  # safely_predict lifted its limit on exit: encoding is in the budget too
  if (inherits(result, "gateway_problem")) {  # the model named it: gatewayr::problem()
    return(fail(422, "model_problem", conditionMessage(result), rows, problem_fields(result)))
  }
  if (inherits(result, "error")) return(fail(422, "model_error", conditionMessage(result), rows))
  if (prediction_count(result) != nrow(frame)) {
    return(fail(500, "internal", sprintf("model '%s' returned %d predictions for %d rows",
                                         meta$name, prediction_count(result), nrow(frame)), rows))
  }
  body <- tryCatch(if (binary) encode_predictions_binary(result) else encode_predictions(result),
                   error = function(e) e)
  lap(clock, "encode")
  if (inherits(body, "error")) {
    if (proc.time()[["elapsed"]] >= deadline) stop(body)
    return(fail(500, "internal", conditionMessage(body), rows))
  }
  reply(200, body, rows = rows)
}
