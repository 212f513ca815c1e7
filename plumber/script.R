# Serves an R user's own Plumber script as written, plus the gateway's health route.
# Usage: Rscript plumber/script.R <plumber.R | entrypoint.R | directory> <host> <port>
#   (host `unix:<path>`: a Unix domain socket)
args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 3) {
  stop("usage: Rscript plumber/script.R <script.R> <host> <port>", call. = FALSE)
}
# As in the user's own session (`library(plumber); pr_run(plumb(...))`): scripts call
# plumber's functions unqualified (as_attachment, pr_cookie, Plumber$new(), @plumber blocks).
suppressPackageStartupMessages(library(plumber))
gatewayr::serve_script(args[[1]], host = args[[2]], port = as.integer(args[[3]]))
