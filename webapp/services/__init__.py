"""Use cases. The only layer that commits; translates adapter errors into user-facing ones."""
