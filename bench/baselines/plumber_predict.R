# What an R user writes to serve a saved model with Plumber, and nothing more: the baseline the
# gateway's R path is measured against (bench/peers.py). MODEL_RDS names the saved model.
model <- readRDS(Sys.getenv("MODEL_RDS"))

#* Predict from JSON records ([{"col": value, ...}, ...]).
#* @post /predict
#* @serializer unboxedJSON list(digits = NA)
function(req) {
  rows <- jsonlite::fromJSON(req$postBody)
  list(predictions = I(unname(predict(model, newdata = rows))))
}
