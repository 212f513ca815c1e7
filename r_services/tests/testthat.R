library(testthat)
library(gatewayr)

test_check("gatewayr")
