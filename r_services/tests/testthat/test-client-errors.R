# gateway_content: any gateway reply made with httr, parsed; errors of every protocol as conditions.

reply <- function(status, body, type) {
  structure(list(url = "http://gateway/x", status_code = as.integer(status),
                 headers = httr::insensitive(list(`content-type` = type)), content = charToRaw(body)),
            class = "response")
}

test_that("a problem+json body becomes a gateway_error with the detail (httr's parser cannot read it)", {
  bad <- reply(422, '{"type":"x","title":"t","status":422,"detail":"column \'wt\' is missing"}',
               "application/problem+json")
  expect_error(httr::content(bad, as = "parsed"))
  caught <- tryCatch(gateway_content(bad), gateway_error = function(e) e)
  expect_s3_class(caught, "gateway_error")
  expect_identical(conditionMessage(caught), "column 'wt' is missing (HTTP 422)")
  expect_identical(caught$status, 422L)
  expect_identical(caught$detail, "column 'wt' is missing")
})

test_that("MLflow's and v2's error bodies, and a non-JSON body, give their words too", {
  mlflow <- reply(403, '{"error_code":"PERMISSION_DENIED","message":"key \'a\' may not use model \'iris\'"}',
                  "application/json")
  expect_error(gateway_content(mlflow), "key 'a' may not use model 'iris' (HTTP 403)", fixed = TRUE,
               class = "gateway_error")
  expect_error(gateway_content(reply(400, '{"error":"unknown input x"}', "application/json")),
               "unknown input x (HTTP 400)", fixed = TRUE)
  expect_error(gateway_content(reply(502, "<html>bad gateway</html>", "text/html")),
               "<html>bad gateway</html> (HTTP 502)", fixed = TRUE)
})

test_that("a success is the parsed body", {
  ok <- reply(200, '{"predictions":[1.5,null]}', "application/json")
  expect_identical(gateway_content(ok), list(predictions = list(1.5, NULL)))
})
