"""The built-in tools; importing this package registers them."""

from tools.builtins import calculator, data_analysis, human, memory_tools, web  # noqa: F401
