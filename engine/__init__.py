"""backprop-viz engine: a float64 NumPy MLP that records every value of a training step."""
