"""`make bench`: speed as ratios measured in one run, cost as counted AWS work (see shared BENCH.md)."""
