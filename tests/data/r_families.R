# R model families the gateway must serve as R's own predict() does, fitted on R's datasets.
# Shared by the testthat suite (test-families.R) and tests/integration/test_parity.py, which
# serves each one through both R backends (cases in parity_cases.json).
# Each entry: model, sample (predictors, unless `target` names a column to leave out).

family_cars <- function() {
  cars <- mtcars
  cars$cyl <- as.integer(cars$cyl)
  cars$am <- factor(ifelse(cars$am == 1, "manual", "auto"), levels = c("auto", "manual"))
  cars
}

family_models <- function() {
  cars <- family_cars()
  set.seed(42)
  forest <- randomForest::randomForest(am ~ wt + hp, data = cars, ntree = 50)
  list(
    rpart = list(model = rpart::rpart(Species ~ ., data = iris), sample = iris, target = "Species"),
    multinom = list(model = nnet::multinom(Species ~ ., data = iris, trace = FALSE), sample = iris[1:4]),
    lda = list(model = MASS::lda(Species ~ ., data = iris), sample = iris[1:4]),
    glm_binomial = list(model = glm(am ~ wt + hp, data = cars, family = binomial), sample = cars[c("wt", "hp")]),
    gam = list(model = mgcv::gam(mpg ~ s(wt) + hp, data = cars), sample = cars[c("wt", "hp")]),
    lm = list(model = lm(mpg ~ wt + hp + cyl + am, data = cars), sample = cars[c("wt", "hp", "cyl", "am")]),
    random_forest = list(model = forest, sample = cars[c("am", "wt", "hp")], target = "am")
  )
}
