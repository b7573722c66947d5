"""One router per resource: the JSON API and one module per page."""
