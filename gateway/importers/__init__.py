"""Models from where users keep them: MLflow model directories and URIs, vetiver pins on folder
boards. One module per source; each ends in register's store functions, so an imported model is
stored and checked as `gateway register` stores and checks its own."""
