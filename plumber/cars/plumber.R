# Stopping distance from speed: an R user's own Plumber API, written as a user would.
# The coefficients come from lm(dist ~ speed, data = cars), saved beside this file.

coefficients <- read.csv("coefficients.csv", stringsAsFactors = FALSE)
intercept <- coefficients$estimate[coefficients$term == "intercept"]
slope <- coefficients$estimate[coefficients$term == "slope"]

#* Predict the stopping distance (ft) for each record's speed (mph)
#* @param req records like [{"speed": 10}, {"speed": 15}]
#* @serializer json list(digits = NA)
#* @post /predict
function(req) {
  records <- req$body
  speed <- if (is.data.frame(records)) records$speed else NULL
  if (is.null(speed)) stop("speed is required")
  list(.pred = intercept + slope * as.numeric(speed))
}

#* Tag every response, as a user's logging or auth filter would
#* @filter tag
function(req, res) {
  res$setHeader("X-Cars-Api", "1")
  plumber::forward()
}

#* Say hello
#* @param name who to greet
#* @param greeting optional, from the query string
#* @get /hello/<name>
function(name, greeting = "hello") {
  list(message = paste0(greeting, " ", name))
}

#* Record feedback on a prediction: answers 201 with what it stored
#* @post /feedback
function(req, res) {
  feedback <- req$body
  if (is.null(feedback$speed) || is.null(feedback$observed)) {
    res$status <- 400
    return(list(error = "send speed and observed"))
  }
  res$status <- 201
  list(stored = list(speed = feedback$speed, observed = feedback$observed))
}

#* Summary of the cars data the model was fitted on, as CSV
#* (written with base R, so the script needs no package beyond plumber; `@serializer csv` needs readr)
#* @serializer contentType list(type = "text/csv; charset=UTF-8")
#* @get /stats
function() {
  stats <- data.frame(
    variable = c("speed", "dist"),
    min = c(min(cars$speed), min(cars$dist)),
    mean = c(mean(cars$speed), mean(cars$dist)),
    max = c(max(cars$speed), max(cars$dist))
  )
  lines <- utils::capture.output(utils::write.csv(stats, row.names = FALSE))
  paste0(paste(lines, collapse = "\n"), "\n")
}
