# The generic R model worker: serves one stored model version over the R wire format.
# Usage: Rscript plumber/worker.R <model_dir> <host> <port> [timeout_s]   (supervisord runs one per port)
# A host `unix:<path>` serves on that Unix domain socket (the port is then unused).
args <- commandArgs(trailingOnly = TRUE)
if (!length(args) %in% c(3, 4)) {
  stop("usage: Rscript plumber/worker.R <model_dir> <host> <port> [timeout_s]", call. = FALSE)
}
timeout_s <- if (length(args) == 4) as.numeric(args[[4]]) else Inf
gatewayr::serve_model(args[[1]], host = args[[2]], port = as.integer(args[[3]]), timeout_s = timeout_s)
