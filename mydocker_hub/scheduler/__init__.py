"""The class-session scheduler: a hub-managed service (see README.md for its scopes)."""
