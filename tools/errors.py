"""Errors a tool raises; a module of its own so the tool process imports it without Django."""


class ToolError(Exception):
    """An expected failure of a tool (bad data, refused host); its message is shown as is."""
