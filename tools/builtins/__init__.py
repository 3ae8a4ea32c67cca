"""The built-in tools, one module each; tools.registry imports them (BUILTIN_MODULES).

This package imports nothing itself: the tool process (tools/sandbox_child.py) imports the
pure tools' modules alone, without the Django-dependent ones.
"""
