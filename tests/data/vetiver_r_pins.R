# vetiver pins for R models on a folder board, written the way vetiver::vetiver_pin_write and
# pins::board_folder write them (neither package is in Debian, so the layout is written here):
#   <board>/<pin>/<version>/data.txt   pins' YAML metadata: file, type "rds", description, user
#   <board>/<pin>/<version>/<pin>.rds  list(model = <fitted model>, prototype = <zero-row data.frame>)
# Versions are named <created>-<first 5 of the pin hash>, as pins names them.
# Usage: Rscript vetiver_r_pins.R BOARD
args <- commandArgs(TRUE)
board <- args[1]

pin_write <- function(x, name, version, description, user) {
  dir <- file.path(board, name, version)
  dir.create(dir, recursive = TRUE)
  file <- paste0(name, ".rds")
  saveRDS(x, file.path(dir, file))
  meta <- list(
    file = file, file_size = as.integer(file.size(file.path(dir, file))), pin_hash = sub(".*-", "", version),
    type = "rds", title = paste0(name, ": a pinned list"), description = description, tags = NULL, urls = NULL,
    created = sub("-.*", "", version), api_version = 1L, user = user
  )
  yaml::write_yaml(meta, file.path(dir, "data.txt"))
}

cars <- mtcars
cars$am <- factor(ifelse(cars$am == 1, "manual", "auto"))
cars$cyl <- as.integer(cars$cyl)
# Two versions: the newer one is what `--pin cars_lm` imports, the older one `@<version>` names.
old <- lm(mpg ~ wt, data = cars)
# vetiver_model(save_prototype = <data>) keeps example rows in the prototype.
pin_write(list(model = old, prototype = cars[1:2, "wt", drop = FALSE]), "cars_lm", "20240101T000000Z-0a1b2",
          "An OLS linear regression model", list(required_pkgs = NULL))
fit <- lm(mpg ~ wt + hp + cyl + am, data = cars)
pin_write(list(model = fit, prototype = cars[0, c("wt", "hp", "cyl", "am")]), "cars_lm", "20240102T000000Z-3c4d5",
          "An OLS linear regression model", list(required_pkgs = NULL))
# A model whose package vetiver lists in required_pkgs.
tree <- rpart::rpart(Species ~ ., data = iris)
pin_write(list(model = tree, prototype = iris[0, 1:4]), "iris_rpart", "20240103T000000Z-6e7f8",
          "An rpart classification tree", list(required_pkgs = list("rpart")))
# vetiver before 0.2 kept `ptype` and `required_pkgs` in the pinned list; ranger is not installed.
pin_write(list(model = fit, ptype = cars[0, c("wt", "hp", "cyl", "am")], required_pkgs = "ranger"), "old_ranger",
          "20230101T000000Z-9a0b1", "old style", list())
# Every column class a prototype may hold, for a model that answers one number per row.
types <- data.frame(when = as.Date("2024-01-31"), at = as.POSIXct("2024-01-31 12:00:00", tz = "UTC"), ok = TRUE,
                    city = "oslo", n = 1L, x = 0.5, level = factor("b", levels = c("a", "b")))
pin_write(list(model = function(newdata, type) as.numeric(newdata$x), prototype = types[0, ]), "all_types",
          "20240104T000000Z-2c3d4", "", list(required_pkgs = NULL))
