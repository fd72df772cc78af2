"""Code the tests share: paths of test data, builders of files in other programs' layouts."""
