"""Time travel on the append-only step log: export and import a run (export.py), fork it at
any step (fork.py), and replay the pure engine over a recorded run (replay.py). The export
document's format and its strict check live in document.py. See docs/time-travel.md."""
