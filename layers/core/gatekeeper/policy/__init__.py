"""The policy engine: producer-side acceptance policies written in IAM policy grammar.

Pure (no AWS, no I/O). Parse a template document once with :func:`parse_template`, then
:func:`evaluate` it per connection request. Any :class:`PolicyError` means "hold the request":
the engine fails closed. See docs/policy-templates.md for the template language.
"""

from .engine import ConditionResult, ContextValue, Evaluation, StatementResult, evaluate
from .errors import ParameterInvalid, PolicyError, PolicyEvaluationError, TemplateInvalid
from .keys import CONDITION_KEYS, DATA_PLANE_KEYS, ConditionKey, KeyType
from .parameters import ParameterSpec, ParamType, ParamValue, resolve_parameters
from .template import Effect, PolicyTemplate, Statement, parse_template

__all__ = [
    "CONDITION_KEYS",
    "DATA_PLANE_KEYS",
    "ConditionKey",
    "ConditionResult",
    "ContextValue",
    "Effect",
    "Evaluation",
    "KeyType",
    "ParamType",
    "ParamValue",
    "ParameterInvalid",
    "ParameterSpec",
    "PolicyError",
    "PolicyEvaluationError",
    "PolicyTemplate",
    "Statement",
    "StatementResult",
    "TemplateInvalid",
    "evaluate",
    "parse_template",
    "resolve_parameters",
]
