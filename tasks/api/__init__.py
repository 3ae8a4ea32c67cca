"""The tasks API: DRF views, the execute entry point, Server-Sent Events and their helpers."""
