"""Files that sessionward places at the origin setup's paths (package data, no logic).

They only hand their arguments to the `sessionward` command; `sessionward install` writes
them (see sessionward.install.seed_paths).
"""
