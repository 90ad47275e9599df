"""Training: losses as torch scalars, symbolic gradients beside the numeric ones, `StSGD`, and
the loop that trains a module on a dataset."""
