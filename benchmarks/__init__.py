"""Performance benchmarks of the photo classifier; run ``python -m benchmarks.run``."""
