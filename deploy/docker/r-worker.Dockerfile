# One R model worker per container: Plumber serving a stored model (plumber/worker.R) or a user's
# script (plumber/script.R). Kubernetes scales the pods; each runs one single-threaded R process.
# Build from the repository root: docker build -f deploy/docker/r-worker.Dockerfile -t gateway-r-worker .
FROM debian:bookworm-slim

# The runtime R packages the Makefile installs (from Debian's r-cran-*: CRAN is not used).
RUN apt-get update \
 && apt-get install -y --no-install-recommends r-base-core r-cran-plumber r-cran-jsonlite \
      r-cran-randomforest r-cran-sodium r-cran-readr r-cran-htmlwidgets \
      r-cran-rpart r-cran-nnet r-cran-mass r-cran-mgcv \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/gateway
COPY r_services ./r_services
COPY plumber ./plumber
RUN R CMD INSTALL --no-multiarch --library=/usr/local/lib/R/site-library r_services

RUN useradd --uid 10001 --user-group --create-home gateway
USER gateway
EXPOSE 8000
# Base R only (no curl in the image): read the worker's own health route.
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD Rscript -e 'invisible(readLines(url("http://127.0.0.1:8000/healthz"), warn = FALSE))'
# The model directory comes from the pod spec: Rscript plumber/worker.R /store/<model>/<version> 0.0.0.0 8000
ENTRYPOINT ["Rscript"]
