# Live tests: run an entrypoint under plumber/ in a background R process, talk HTTP to it,
# and stop it by its PID when the test ends.

# Start `Rscript <entrypoint> <target> 127.0.0.1 <port>`; returns list(url, pid, log).
# `vars`: more environment variables, c(NAME = "value").
start_entrypoint <- function(entrypoint, target, env = parent.frame(), vars = character()) {
  port <- httpuv::randomPort()
  log <- tempfile("entrypoint-", fileext = ".log")
  rscript <- file.path(R.home("bin"), "Rscript")
  command <- sprintf("%sR_LIBS=%s exec %s %s %s 127.0.0.1 %d > %s 2>&1 & echo $!",
                     paste0(names(vars), "=", shQuote(vars), " ", recycle0 = TRUE, collapse = ""),
                     shQuote(paste(.libPaths(), collapse = ":")), shQuote(rscript),
                     shQuote(repo_file("plumber", entrypoint)), shQuote(target), port, shQuote(log))
  pid <- as.integer(system2("bash", c("-c", shQuote(command)), stdout = TRUE))
  withr::defer(tools::pskill(pid), envir = env)
  list(url = sprintf("http://127.0.0.1:%d", port), pid = pid, log = log)
}

# Wait until `path` answers 200 (at most `seconds`); fails with the process's log otherwise.
wait_until_up <- function(server, path, seconds = 30) {
  deadline <- Sys.time() + seconds
  while (Sys.time() < deadline) {
    reply <- tryCatch(httr::GET(paste0(server$url, path), httr::timeout(1)), error = function(e) NULL)
    if (!is.null(reply) && httr::status_code(reply) == 200) return(invisible(reply))
    if (!tools::pskill(server$pid, 0)) break
    Sys.sleep(0.05)
  }
  stop(sprintf("%s did not answer on %s; its log:\n%s", server$url, path,
               paste(readLines(server$log, warn = FALSE), collapse = "\n")))
}

post_json <- function(server, path, body) {
  httr::POST(paste0(server$url, path), body = body, httr::content_type_json(), httr::timeout(10))
}

body_of <- function(reply) {
  jsonlite::fromJSON(httr::content(reply, as = "text", encoding = "UTF-8"), simplifyVector = FALSE)
}

# The JSON request log line an entrypoint wrote for this request id (it may lag the reply).
logged_request <- function(server, request_id, seconds = 5) {
  deadline <- Sys.time() + seconds
  repeat {
    lines <- grep("^\\{", readLines(server$log, warn = FALSE), value = TRUE)
    entries <- lapply(lines, jsonlite::fromJSON, simplifyVector = FALSE)
    found <- Filter(function(e) identical(e$request_id, request_id), entries)
    if (length(found) > 0 || Sys.time() > deadline) break
    Sys.sleep(0.05)
  }
  expect_length(found, 1)
  found[[1]]
}
