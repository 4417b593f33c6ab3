"""Import each function's real handler and invoke it the way the Lambda runtime would."""

from __future__ import annotations

import importlib
import logging
import os
import threading
import traceback
from dataclasses import dataclass, field
from typing import Any

from local.lambda_context import LambdaContext
from local.template import FunctionSpec

log = logging.getLogger("local.runtime")


class FunctionUnavailable(RuntimeError):
    """The function's module failed to import (e.g. still being written)."""


@dataclass
class LocalFunction:
    spec: FunctionSpec
    handler: Any = None
    import_error: str = ""
    # One invocation at a time per function, like one warm container: Powertools keeps
    # per-module state (logger keys, metric sets) that concurrent calls would mix up.
    lock: threading.Lock = field(default_factory=threading.Lock)
    invocations: int = 0

    def invoke(self, event: Any) -> Any:
        if self.handler is None:
            raise FunctionUnavailable(f"{self.spec.logical_id} is not loaded: {self.import_error}")
        context = LambdaContext(
            function_name=self.spec.logical_id,
            memory_limit_in_mb=self.spec.memory_mb,
            timeout_s=self.spec.timeout_s,
        )
        with self.lock:
            self.invocations += 1
            return self.handler(event, context)


def load_functions(
    specs: list[FunctionSpec], environments: dict[str, dict[str, str]]
) -> dict[str, LocalFunction]:
    """Import every handler. Each module is imported with its own environment on top, so
    module-level objects (Logger(service=...)) see their function's variables."""
    loaded: dict[str, LocalFunction] = {}
    for spec in specs:
        function = LocalFunction(spec=spec)
        saved = dict(os.environ)
        os.environ.update(environments.get(spec.logical_id, {}))
        try:
            module = importlib.import_module(spec.module)
            function.handler = getattr(module, spec.attribute)
        except Exception as error:  # a broken function must not keep the others from running
            function.import_error = f"{type(error).__name__}: {error}"
            log.error("cannot load %s (%s):\n%s", spec.logical_id, spec.module, traceback.format_exc())
        finally:
            os.environ.clear()
            os.environ.update(saved)
        loaded[spec.logical_id] = function
    return loaded
