"""DynamoDB access. `keys` is the only module that builds pk/sk strings."""
