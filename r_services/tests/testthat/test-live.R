# The entrypoints under plumber/, run as the gateway runs them: real processes, real HTTP.

test_that("plumber/worker.R serves a stored model and survives every error", {
  frame <- cars_frame()
  fit <- lm(mpg ~ wt + hp + cyl + am, data = frame)
  dir <- save_model(fit, tempfile("store-"), "mtcars", frame[c("wt", "hp", "cyl", "am")])
  server <- start_entrypoint("worker.R", dir)
  health <- body_of(wait_until_up(server, "/healthz"))
  expect_identical(health[c("status", "pid", "model", "version")],
                   list(status = "ok", pid = server$pid, model = "mtcars", version = "1"))

  newdata <- frame[c(2, 5), c("wt", "hp", "cyl", "am")]
  good <- post_json(server, "/predict", wire_request(newdata))
  expect_identical(httr::status_code(good), 200L)
  expect_match(httr::headers(good)[["content-type"]], "application/json")
  expect_identical(vapply(body_of(good)$predictions, identity, 0), unname(predict(fit, newdata)))

  bad_json <- post_json(server, "/predict", "{\"columns\":")
  expect_identical(httr::status_code(bad_json), 400L)
  expect_identical(body_of(bad_json)$error$code, "bad_request")
  missing <- post_json(server, "/predict", wire_request(newdata[c("hp", "cyl", "am")]))
  expect_identical(httr::status_code(missing), 422L)
  expect_identical(body_of(missing)$error, list(code = "invalid_input", message = "column 'wt' is missing"))
  unknown <- httr::GET(paste0(server$url, "/nope"))
  expect_identical(httr::status_code(unknown), 404L)
  expect_identical(body_of(unknown)$error$code, "not_found")

  metadata <- body_of(httr::GET(paste0(server$url, "/metadata")))
  expect_identical(metadata$name, "mtcars")
  expect_identical(vapply(metadata$prototype, `[[`, "", "name"), c("wt", "hp", "cyl", "am"))

  again <- post_json(server, "/predict", wire_request(newdata))
  expect_identical(httr::status_code(again), 200L)

  traced <- httr::POST(paste0(server$url, "/predict"), body = wire_request(newdata),
                       httr::content_type_json(), httr::add_headers(`X-Request-ID` = "live-worker-7"))
  expect_identical(httr::status_code(traced), 200L)
  expect_identical(logged_request(server, "live-worker-7")[c("model", "rows", "status")],
                   list(model = "mtcars", rows = 2L, status = 200L))
})

test_that("plumber/script.R serves the cars script as written, errors as Plumber answers them", {
  server <- start_entrypoint("script.R", repo_file("plumber", "cars", "plumber.R"))
  health <- body_of(wait_until_up(server, "/__gateway/healthz"))
  expect_identical(health$status, "ok")
  expect_identical(health$pid, server$pid)

  speeds <- c(10, 15, 4)
  reply <- post_json(server, "/predict", "[{\"speed\": 10}, {\"speed\": 15}, {\"speed\": 4}]")
  expect_identical(httr::status_code(reply), 200L)
  expected <- unname(predict(lm(dist ~ speed, data = cars), data.frame(speed = speeds)))
  expect_equal(vapply(body_of(reply)$.pred, identity, 0), expected, tolerance = 1e-13)

  traced <- httr::GET(paste0(server$url, "/hello/ann"), httr::add_headers(`X-Request-ID` = "live-script-1"))
  expect_identical(httr::status_code(traced), 200L)
  expect_identical(logged_request(server, "live-script-1")$status, 200L)

  failed <- post_json(server, "/predict", "[{\"dist\": 10}]")
  expect_identical(httr::status_code(failed), 500L)
  expect_identical(httr::content(failed, as = "text", encoding = "UTF-8"), "{\"error\":\"500 - Internal server error\"}")
  # The gateway's own predict call gets R's message, in the wire format.
  predicted <- httr::POST(paste0(server$url, "/predict"), body = "[{\"dist\": 10}]", httr::content_type_json(),
                          httr::add_headers(`X-Gateway-Predict` = "1", `X-Request-ID` = "live-script-2"))
  expect_identical(httr::status_code(predicted), 500L)
  expect_identical(body_of(predicted)$error, list(code = "model_error", message = "speed is required"))
  expect_identical(logged_request(server, "live-script-2")$error, "speed is required")

  hello <- httr::GET(paste0(server$url, "/hello/ann"))
  expect_identical(body_of(hello)$message, list("hello ann"))
  stats <- httr::GET(paste0(server$url, "/stats"))
  expect_match(httr::headers(stats)[["content-type"]], "text/csv")
  table <- utils::read.csv(text = httr::content(stats, as = "text", encoding = "UTF-8"))
  expect_identical(table$variable, c("speed", "dist"))
  expect_identical(table$mean, c(mean(cars$speed), mean(cars$dist)))
})
