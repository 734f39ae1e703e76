"""Documentation a tool can write: the CLI reference (from the CLI's own help), the operator
recipes (commands run against the sandbox), and the size budget of the hand-written pages.
`make docs` regenerates; tests fail when a generated page is stale or a page outgrows its budget."""
