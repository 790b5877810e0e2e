"""Programs the tests run in a subprocess (`python -m tests.support.programs.NAME`): inside a
network namespace, or with their own HOME. Each prints JSON lines."""
