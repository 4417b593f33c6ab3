"""The `cohortcast` command line: API keys and (against a deployment URL) management calls."""
