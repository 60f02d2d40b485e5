"""The simulator's market side: the true book, the generated or replayed source, the streams."""
