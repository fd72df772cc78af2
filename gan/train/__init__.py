"""Training: data set reader (`dataset`), ADA augmentation (`augment`), losses and the training loop."""
