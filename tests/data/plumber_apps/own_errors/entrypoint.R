# An entrypoint.R whose router has its own error and 404 handlers: they answer, not Plumber's
# defaults and not the gateway's.
library(plumber)

pr("routes.R") |>
  pr_set_error(function(req, res, err) {
    res$status <- 503
    list(failed = conditionMessage(err), path = req$PATH_INFO)
  }) |>
  pr_set_404(function(req, res) {
    res$status <- 404
    res$serializer <- serializer_text()
    paste("nothing at", req$PATH_INFO)
  })
