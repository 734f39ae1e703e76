"""Lambda `Invoke` on the sandbox's moto server → the local Lambda service, so that what an
operator does against a deployed stack (`gatekeeper reconcile`, `aws lambda invoke`) works against
the sandbox unchanged.

moto registers no function for the stack (no Docker); for the stack's own function names
(`<stack>-<LogicalId>`, as the emulated stack's `Ref` gives them) the server's Invoke is answered
by the real handler. The call is queued for the delivery thread, which runs every handler of the
sandbox one at a time (as the handlers share one process), and the server thread waits for it.
"""

from __future__ import annotations

import contextlib
import json
import queue
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from gatekeeper_ops.local_lambda import Invocation, LocalLambda
from gatekeeper_ops.stack import FunctionBinding


@dataclass
class InvokeBridge:
    lambdas: LocalLambda
    waiting: queue.Queue[tuple[FunctionBinding, dict[str, Any], Future[Invocation]]] = field(
        default_factory=queue.Queue
    )

    def binding(self, function_name: str) -> FunctionBinding | None:
        name = function_name.rsplit(":function:", 1)[-1].split(":", 1)[0]
        for binding in self.lambdas.stack.functions.values():
            if name in (f"{self.lambdas.stack.name}-{binding.logical_id}", binding.logical_id):
                return binding
        return None

    def serve(self) -> int:
        """Run the invocations waiting (on the delivery thread); how many were run."""
        served = 0
        while True:
            try:
                binding, event, result = self.waiting.get_nowait()
            except queue.Empty:
                return served
            result.set_result(self.lambdas.invoke(binding, event, "invoke"))
            served += 1

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        from moto.awslambda.models import LambdaBackend

        original = LambdaBackend.invoke
        bridge = self

        def invoke(  # noqa: PLR0917 - moto's LambdaBackend.invoke signature
            backend: Any, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: Any
        ) -> Any:
            binding = bridge.binding(function_name)
            if binding is None:
                return original(backend, function_name, qualifier, body, headers, response_headers)
            event = json.loads(body or "{}")
            result: Future[Invocation] = Future()
            bridge.waiting.put((binding, event, result))
            if headers.get("X-Amz-Invocation-Type") == "Event":
                return b""
            invocation = result.result(timeout=binding.timeout + 60)
            if not invocation.ok:
                response_headers["x-amz-function-error"] = "Unhandled"
                error_type, _, message = (invocation.error or "Error: ").partition(": ")
                return json.dumps({"errorMessage": message, "errorType": error_type}).encode()
            return json.dumps(invocation.result, default=str).encode()

        LambdaBackend.invoke = invoke  # type: ignore[method-assign,assignment]
        try:
            yield
        finally:
            LambdaBackend.invoke = original  # type: ignore[method-assign]
