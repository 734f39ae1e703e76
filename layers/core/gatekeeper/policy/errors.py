"""The policy engine's error types.

Every error here means "this request cannot be decided by policy": callers catch
:class:`PolicyError` and hold the request (fail closed). The subclasses say whose mistake it is:
the template author's (:class:`TemplateInvalid`), the tenant record's parameter overrides
(:class:`ParameterInvalid`), or the evaluation context (:class:`PolicyEvaluationError`).
"""

from collections.abc import Sequence


class PolicyError(Exception):
    """Base class: the policy engine could not produce a decision."""


class TemplateInvalid(PolicyError):
    """A template document does not parse or validate; it must never be used to decide.

    ``problems`` lists every problem found, each naming where it is (statement, operator, key),
    so an operator can fix them all in one edit.
    """

    def __init__(self, problems: Sequence[str], *, template: str | None = None) -> None:
        self.problems: list[str] = list(problems)
        self.template = template
        super().__init__(self._summary())

    def _summary(self) -> str:
        subject = f"template {self.template!r}" if self.template else "template"
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        lines = [f"{subject} is invalid ({count} {noun}):"]
        lines.extend(f"  - {problem}" for problem in self.problems)
        return "\n".join(lines)


class ParameterInvalid(TemplateInvalid):
    """Parameter overrides (from a tenant record) do not fit the template's parameter declarations."""


class PolicyEvaluationError(PolicyError):
    """A statement could not be evaluated against this context (for example an unresolvable
    ``${tenant:…}`` reference, or a context value of the wrong type).

    The request must be held, not decided: guessing would risk an accept the policy did not grant.
    """

    def __init__(
        self,
        message: str,
        *,
        sid: str | None = None,
        operator: str | None = None,
        key: str | None = None,
    ) -> None:
        self.sid = sid
        self.operator = operator
        self.key = key
        where = []
        if sid is not None:
            where.append(f"statement {sid!r}")
        if operator is not None:
            where.append(operator)
        if key is not None:
            where.append(key)
        super().__init__(f"{' '.join(where)}: {message}" if where else message)
        self.reason = message
