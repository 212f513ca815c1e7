# Builds the R demo models into a model store, through gatewayr::save_model.
# Usage: R_LIBS=.rlib Rscript demo/build_r_models.R <store>
args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 1) stop("usage: Rscript demo/build_r_models.R <store>", call. = FALSE)
store <- args[[1]]

# mtcars with the types a client sends: cylinders are counts, transmission and engine labels.
cars <- mtcars
cars$cyl <- as.integer(cars$cyl)
cars$am <- factor(ifelse(cars$am == 1, "manual", "auto"), levels = c("auto", "manual"))
cars$engine <- factor(ifelse(cars$vs == 1, "straight", "V-shaped"), levels = c("V-shaped", "straight"))

economy <- lm(mpg ~ wt + hp + cyl + am, data = cars)
economy_dir <- gatewayr::save_model(
  economy, store, "mtcars", sample = cars[c("wt", "hp", "cyl", "am")],
  description = "fuel economy (R lm)"
)

set.seed(42)
transmission <- randomForest::randomForest(am ~ mpg + hp + wt + engine, data = cars, ntree = 200)
transmission_dir <- gatewayr::save_model(
  transmission, store, "transmission", sample = cars[c("mpg", "hp", "wt", "engine")],
  description = "automatic or manual (R randomForest)"
)

cat(sprintf("mtcars version %s\ntransmission version %s\n", basename(economy_dir), basename(transmission_dir)))
