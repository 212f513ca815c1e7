# model.json's `reference`, for drift: per input column of the sample, the distribution live
# inputs are compared with (the gateway computes the PSI). The same rules as
# gateway/drift_reference.py; tests/data/drift_reference.json holds both languages to them.

REFERENCE_MAX_BINS <- 10L
REFERENCE_MAX_LEVELS <- 20L # strings: the commonest levels kept; the rest are "other"
REFERENCE_SMALL_SAMPLE <- 100L # rows under which the reference is rough

# list(rows, columns = {name: ...}, note?) for the columns it can bin (not dates).
drift_reference <- function(sample, inputs) {
  rows <- nrow(sample)
  columns <- structure(list(), names = character(0))
  for (spec in inputs) {
    if (!(spec$name %in% names(sample)) || rows == 0L) next
    column <- sample[[spec$name]]
    if (spec$type %in% c("double", "integer")) {
      columns[[spec$name]] <- reference_numeric(as.double(column), rows)
    } else if (spec$type %in% c("factor", "string", "logical")) {
      columns[[spec$name]] <- reference_levels(column, rows, spec$levels)
    }
  }
  out <- list(rows = rows, columns = columns)
  if (rows < REFERENCE_SMALL_SAMPLE) {
    out$note <- sprintf(paste0(
      "the sample has only %d rows: the bins are few and drift figures rough; ",
      "register with %d+ rows of training data for a steadier reference"
    ), rows, REFERENCE_SMALL_SAMPLE)
  }
  out
}

# Up to ten quantile bins (R's type 7, as pandas): bin i holds values in (edge[i-1], edge[i]].
reference_numeric <- function(values, rows) {
  present <- values[!is.na(values)]
  bins <- max(1L, min(REFERENCE_MAX_BINS, length(present) %/% 5L))
  edges <- if (bins > 1L) {
    sort(unique(unname(stats::quantile(present, seq_len(bins - 1L) / bins, type = 7))))
  } else {
    numeric(0)
  }
  counts <- tabulate(findInterval(present, edges, left.open = TRUE) + 1L, nbins = length(edges) + 1L)
  list(kind = "numeric", edges = I(edges), shares = I(counts / rows),
       null_share = (rows - length(present)) / rows)
}

# The share of each level (logicals as "true"/"false"; a factor's unused levels at 0).
reference_levels <- function(column, rows, declared) {
  present <- column[!is.na(column)]
  text <- if (is.logical(present)) ifelse(present, "true", "false") else as.character(present)
  counts <- sort(table(text), decreasing = TRUE)
  kept <- utils::head(counts, REFERENCE_MAX_LEVELS)
  levels <- structure(as.list(as.numeric(kept) / rows), names = names(kept))
  for (name in declared) if (is.null(levels[[name]])) levels[[name]] <- 0
  list(kind = "categorical", levels = levels,
       other_share = sum(as.numeric(counts)[-seq_len(length(kept))]) / rows,
       null_share = (rows - length(present)) / rows)
}
