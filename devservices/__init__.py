"""Local stand-ins for the external services the pipelines talk to (for the demo, tests and benchmarks)."""
