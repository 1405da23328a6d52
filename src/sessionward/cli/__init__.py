"""The `sessionward` command: a thin layer over the Python API.

main.py holds the command table and the one top-level error handler; each family of
commands lives in its own module, imported only when one of its commands runs.
"""
