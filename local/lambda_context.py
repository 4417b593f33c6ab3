"""A stand-in for the Lambda runtime's context object (what Powertools reads from it)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from local.template import function_arn


@dataclass
class LambdaContext:
    function_name: str = "cohortcast-local"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = ""
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    timeout_s: int = 30
    log_group_name: str = ""
    log_stream_name: str = "local"
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self.invoked_function_arn = self.invoked_function_arn or function_arn(self.function_name)
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"
        self._deadline = time.monotonic() + self.timeout_s

    def get_remaining_time_in_millis(self) -> int:
        # Handlers that split work before the 15-minute limit read this; locally nothing is killed.
        return max(0, int((self._deadline - time.monotonic()) * 1000))
