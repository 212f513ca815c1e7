# A router built in code with pr(), no annotations, as R users also write them; the gateway
# serves the router the file ends with. Its routes cover what the shipped examples do not.
library(plumber)

pr() |>
  pr_get("/hello", function() list(message = "hello")) |>
  # Plumber hides R's message from clients: {"error":"500 - Internal server error"}.
  pr_get("/boom", function() stop("database password is hunter2")) |>
  # A status set before the error is kept: 418 {"error":"Internal error"}.
  pr_get("/teapot", function(res) {
    res$status <- 418
    stop("the kettle leaked /etc/secrets")
  }) |>
  # A large binary download: 3 MB of bytes that are not UTF-8.
  pr_get("/big", function() {
    bytes <- as.raw(rep(c(0:255, 255:0), length.out = 3e6))
    as_attachment(bytes, "big.bin")
  }, serializer = serializer_octet()) |>
  # Promises (as 13-promises, without its 5 s sleeps): the answer and the error come later.
  pr_get("/later", function() {
    promises::promise(function(resolve, reject) later::later(function() resolve(list(late = TRUE)), 0.1))
  }) |>
  pr_get("/later-bad", function() {
    promises::promise(function(resolve, reject) later::later(function() reject(simpleError("async secret")), 0.1))
  }) |>
  pr_post("/echo", function(req) req$bodyRaw, serializer = serializer_octet(), parsers = "octet") |>
  pr_get("/two-cookies", function(res) {
    res$setCookie("flavour", "oat", path = "/")
    res$setCookie("size", "large", http = TRUE)
    list(set = 2)
  }) |>
  pr_get("/session", function(req) {
    req$session$visits <- if (is.null(req$session$visits)) 1 else req$session$visits + 1
    list(visits = req$session$visits)
  }) |>
  pr_cookie(key = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", name = "app_session")
