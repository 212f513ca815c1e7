# Serves an R user's own Plumber script as written, plus the gateway's health route.
# Usage: Rscript plumber/script.R <script.R> <host> <port>   (host `unix:<path>`: a Unix domain socket)
args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 3) {
  stop("usage: Rscript plumber/script.R <script.R> <host> <port>", call. = FALSE)
}
gatewayr::serve_script(args[[1]], host = args[[2]], port = as.integer(args[[3]]))
