"""backprop-viz web app: the JSON API and the pages, around the NumPy engine."""
