"""The local stack: cohortcast on moto in one process (`python -m local`). Dev-only, never deployed."""
