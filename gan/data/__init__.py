"""Making data sets: `dataset_tool` (convert a folder of arbitrary images into a training set)."""
