"""The in-app feed: live targeting, read state, reactions (docs/in-app.md)."""
