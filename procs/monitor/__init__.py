"""The monitor's logic, testable without a process: read-only views of an instance's shared
memory (``shmview``), the Prometheus collector, /health, the ops API. ``tui/`` reuses the views.
"""
