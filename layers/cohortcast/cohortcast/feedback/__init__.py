"""SES feedback: configuration-set events → suppression list, ledger settlement, engagement counters."""
