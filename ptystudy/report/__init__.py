"""The study's report: tables, figures over the whole matrix, the summary and the HTML page."""
