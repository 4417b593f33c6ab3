"""Cross-domain work: what combines several domains sits above all of them."""
