"""The rule engine: a validated Rule compiled into one generated Python function, with explain and
next-flip derived from the same node definitions.

- `nodes`: one class per node kind (its evaluation source, explain detail and next flip time)
- `codegen`: the one code generator (and the `now`-derived bounds)
- `windows`: the one counting loop over hour buckets, and the bucket walks
- `explain`, `compiled`: the explain tree and `CompiledRule`
"""

from cohortcast.segments.engine.compiled import CompiledRule, compile_rule
from cohortcast.segments.engine.nodes import CounterSpec, counter_id
from cohortcast.segments.engine.windows import trend_change

__all__ = ["CompiledRule", "CounterSpec", "compile_rule", "counter_id", "trend_change"]
