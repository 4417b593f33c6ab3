"""cohortcast: the shared domain package, deployed as a Lambda layer."""
