"""Cost, traces, metrics and task-aware logs: what every call did and what it cost."""
