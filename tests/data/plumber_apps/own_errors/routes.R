#* @get /fine
function() list(ok = TRUE)

#* @get /boom
function() stop("told to fail")
