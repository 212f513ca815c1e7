# The binary wire (the gateway's own hop): the same data.frame and the same predictions as the
# JSON wire. The request writer here mirrors gateway/codecs/rwire_binary.py.

binary_request <- function(columns, types, params = structure(list(), names = character(0))) {
  heads <- character(0)
  blocks <- list()
  for (name in names(columns)) {
    x <- columns[[name]]
    missing <- which(is.na(x))
    type <- types[[name]]
    bytes <- switch(type,
      double = { x[missing] <- 0; writeBin(as.numeric(x), raw(), size = 8L, endian = "little") },
      integer = { x[missing] <- 0L; writeBin(as.integer(x), raw(), size = 4L, endian = "little") },
      logical = { x[missing] <- FALSE; writeBin(as.integer(x), raw(), size = 4L, endian = "little") },
      { x <- as.character(x); x[missing] <- ""; writeBin(enc2utf8(x), raw()) }
    )
    heads <- c(heads, sprintf('{"name":"%s","type":"%s","bytes":%d,"missing":[%s]}', name, type, length(bytes),
                              paste(missing, collapse = ",")))
    blocks[[name]] <- bytes
  }
  header <- sprintf('{"rows":%d,"params":%s,"columns":[%s]}', length(columns[[1]]),
                    jsonlite::toJSON(params, auto_unbox = TRUE), paste(heads, collapse = ","))
  c(charToRaw(enc2utf8(header)), as.raw(10L), unlist(blocks, use.names = FALSE))
}

# A binary reply → list(predictions = vector or named list of vectors), NA for null.
read_reply <- function(body) {
  wire <- read_binary_wire(body)
  header <- rawToChar(body[seq_len(which(body == as.raw(10L))[1] - 1L)])
  if (!grepl('"shape":"columns"', header, fixed = TRUE)) {
    return(wire$columns[[1]])
  }
  wire$columns
}

schema <- every_type_schema()
types <- schema_types(schema)
json_columns <- paste0('{"x": [0.123456789, 3, null], "n": [1, null, -2147483647], "ok": [true, null, false],',
                       ' "s": ["", "caf\\u00e9", null], "f": ["b", null, "a"], "d": ["2024-02-29", null, "0999-12-31"],',
                       ' "t": ["2024-01-02T03:04:05.25Z", null, "2024-01-02 03:04+02:00"]}')
vectors <- list(x = c(0.123456789, 3, NA), n = c(1L, NA, -2147483647L), ok = c(TRUE, NA, FALSE),
                s = c("", "caf\u00e9", NA), f = c("b", NA, "a"), d = c("2024-02-29", NA, "0999-12-31"),
                t = c("2024-01-02T03:04:05.25Z", NA, "2024-01-02 03:04+02:00"))

test_that("every wire type, nulls included, becomes the data.frame the JSON wire builds", {
  wire <- read_binary_wire(binary_request(vectors, types))
  expect_identical(wire$types, types)
  from_json <- columns_to_frame(jsonlite::fromJSON(json_columns, simplifyVector = FALSE), types, schema)
  expect_identical(fast_frame(wire$columns, schema, vector_column), from_json)
})

test_that("a bad value steps aside to the value-by-value check, which words it as for JSON", {
  bad <- vectors
  bad$f[[2]] <- "c"
  expect_null(fast_frame(read_binary_wire(binary_request(bad, types))$columns, schema, vector_column))
  values <- as_json_values(read_binary_wire(binary_request(bad, types))$columns)
  expect_identical(validate_frame(values, schema, "m")$detail,
                   "column 'f' has unknown level 'c' at row 2; known levels: a, b")
  strict <- schema
  strict[[1]]$nullable <- FALSE
  expect_null(fast_frame(read_binary_wire(binary_request(vectors, types))$columns, strict, vector_column))
})

test_that("predictions come back as the exact doubles, NA and non-finite as missing, every type", {
  x <- c(1 / 3, NA, Inf, -534.0079275920029, 2)
  expect_identical(read_reply(encode_predictions_binary(x)), c(1 / 3, NA, NA, -534.0079275920029, 2))
  frame <- data.frame(p = c(0.5, 0.25), k = factor(c("a", NA)), n = c(3L, NA), ok = c(NA, TRUE),
                      d = as.Date(c("2024-02-29", NA)), stringsAsFactors = FALSE)
  back <- read_reply(encode_predictions_binary(frame))
  expect_identical(back, list(p = c(0.5, 0.25), k = c("a", NA), n = c(3L, NA), ok = c(NA, TRUE),
                              d = c("2024-02-29", NA)))
  expect_error(encode_predictions_binary(list(1, 2)), "cannot encode predictions of class 'list'")
})

test_that("the worker's direct and Plumber routes answer a binary request in binary, as predict says", {
  model <- direct_app("binary")
  frame <- model$frame
  fit <- model$fit
  loaded <- model$loaded
  pr <- model$pr
  app <- model$app
  body <- binary_request(frame[1:3, c("wt", "hp")], list(wt = "double", hp = "double"))
  request <- function() {
    env <- list2env(list(REQUEST_METHOD = "POST", PATH_INFO = "/predict", QUERY_STRING = "", HTTP_HOST = "test",
                         CONTENT_TYPE = BINARY_WIRE_TYPE,
                         rook.input = list(read = function(...) body, rewind = function() invisible(),
                                           read_lines = function() character())))
    env
  }
  capture.output(direct <- app$call(request()), type = "message")  # the request log lines
  capture.output(routed <- pr$call(request()), type = "message")
  expect_identical(direct$status, 200L)
  expect_identical(direct$headers[["Content-Type"]], BINARY_WIRE_TYPE)
  expect_identical(direct$body, routed$body)
  expect_equal(read_reply(direct$body), unname(predict(fit, frame[1:3, c("wt", "hp")])), tolerance = 0)
  broken <- handle_predict(loaded, as.raw(c(1, 2, 3)))
  expect_identical(broken$status, 400L)
  expect_match(jsonlite::fromJSON(broken$body)$error$message, "the binary body is not readable")
})

test_that("a binary body whose sizes do not add up is a 400, before R allocates what it claims", {
  frame <- cars_frame()
  loaded <- load_model(save_model(lm(mpg ~ wt, data = frame), tempfile("store-"), "sizes", frame["wt"]))
  body <- function(header, bytes) c(charToRaw(header), as.raw(10L), bytes)
  column <- function(type, bytes, missing = "") {
    sprintf('{"name":"wt","type":"%s","bytes":%d,"missing":[%s]}', type, bytes, missing)
  }
  hostile <- list(
    body(sprintf('{"rows":1000000000,"params":{},"columns":[%s]}', column("string", 2)), as.raw(c(65, 0))),
    body(sprintf('{"rows":2,"params":{},"columns":[%s]}', column("double", 8)), raw(8)),
    body(sprintf('{"rows":1,"params":{},"columns":[%s]}', column("double", 8, "100000000")), raw(8)),
    body(sprintf('{"rows":-1,"params":{},"columns":[%s]}', column("double", 8)), raw(8)),
    body(sprintf('{"rows":1,"params":{},"columns":[%s]}', column("double", 16)), raw(8))
  )
  for (request in hostile) {
    took <- system.time(out <- handle_predict(loaded, request))[["elapsed"]]
    expect_identical(out$status, 400L)
    expect_match(jsonlite::fromJSON(out$body)$error$message, "the binary body is not readable")
    expect_lt(took, 1)
  }
})
