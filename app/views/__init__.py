"""What a page shows, made in one place: numbers as text and LaTeX, colours, chart figures."""
