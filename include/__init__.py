"""Plain-Python logic of the pipelines, importable and testable without a scheduler."""
