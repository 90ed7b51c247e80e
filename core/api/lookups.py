"""URL lookups the API's routers share."""

# A UUID with or without its dashes, as Django's UUIDField reads it: anything else is a 404
# from the router, never a 500 from the database.
UUID_PATTERN = "[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
