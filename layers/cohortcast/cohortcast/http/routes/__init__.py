"""Every HTTP route, one Powertools `Router` per area, with its API request/response models."""
