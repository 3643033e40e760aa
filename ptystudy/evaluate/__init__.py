"""Phase G: alignment, the metrics, scoring one condition, and statistics over replicates."""
