"""Executors run cell payloads and yield their outcomes; the driver writes the index."""
