"""A user's email preferences behind the signed `/u/{token}` link: the page, its form, one-click."""
