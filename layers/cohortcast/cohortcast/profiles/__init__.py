"""User profiles: traits, first/last seen and compact behavioural aggregates."""
