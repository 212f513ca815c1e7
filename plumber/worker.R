# The generic R model worker: serves one stored model version over the R wire format.
# Usage: Rscript plumber/worker.R <model_dir> <host> <port>   (supervisord runs one per port)
args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 3) {
  stop("usage: Rscript plumber/worker.R <model_dir> <host> <port>", call. = FALSE)
}
gatewayr::serve_model(args[[1]], host = args[[2]], port = as.integer(args[[3]]))
