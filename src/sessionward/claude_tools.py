"""Claude Code's tool names that sessionward acts on, written once: the hooks dispatch on
them, claims record them, install writes them into settings.json's matchers."""

WRITE_TOOLS = ("Edit", "Write", "MultiEdit", "NotebookEdit")  # guarded before, claimed after
READ_TOOLS = ("Read",)  # claimed after (a read is what a later blind write is checked against)
CLAIM_TOOLS = WRITE_TOOLS + READ_TOOLS
