"""HTTP edge shared by the API functions: resolver factory, error shape, auth scopes."""
