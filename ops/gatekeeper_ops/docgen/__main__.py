"""`make docs`: regenerate the CLI reference and the operator recipes, then report the budget of
the hand-written pages. Exit 1 when a recipe's command no longer exits as written or a page is over
its budget."""

from __future__ import annotations

import sys

from gatekeeper_ops.docgen import budget, cli_reference, parameters, recipes


def main() -> int:
    print(f"wrote {cli_reference.write()}")
    print(f"wrote {parameters.write()}")
    page, problems = recipes.write()
    print(f"wrote {page}")
    for problem in problems:
        print(f"recipe failed: {problem}", file=sys.stderr)
    print(budget.table())
    over = budget.problems()
    for problem in over:
        print(f"over budget: {problem}", file=sys.stderr)
    return 1 if problems or over else 0


if __name__ == "__main__":
    sys.exit(main())
