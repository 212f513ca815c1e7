# model.json's drift reference: R writes what tests/data/drift_reference.json says, as the
# gateway's Python does (tests/unit/test_drift_golden.py reads the same file).

golden <- read_golden("drift_reference.json")

sample_of <- function(case) {
  columns <- lapply(names(case$columns), function(name) {
    values <- vapply(case$columns[[name]], function(v) if (is.null(v)) NA_character_ else as.character(v), "")
    switch(case$types[[name]],
      double = as.double(values),
      integer = as.integer(values),
      logical = as.logical(values),
      string = values,
      factor = factor(values, levels = unlist(case$levels[[name]]))
    )
  })
  structure(columns, names = names(case$columns), class = "data.frame", row.names = seq_along(columns[[1]]))
}

for (case in golden$cases) {
  test_that(paste("drift reference:", case$name), {
    sample <- sample_of(case)
    got <- jsonlite::fromJSON(gatewayr:::to_json_object(gatewayr:::drift_reference(sample, gatewayr:::infer_inputs(sample))),
                              simplifyVector = FALSE)
    # Levels of equal counts may come in another order: compare them by name.
    by_name <- function(ref) {
      ref$columns <- lapply(ref$columns, function(col) {
        if (!is.null(col$levels)) col$levels <- col$levels[order(names(col$levels))]
        col
      })
      ref
    }
    expect_equal(by_name(got), by_name(case$reference), tolerance = 1e-12)
  })
}
