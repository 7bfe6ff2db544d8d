"""Identity: users, roles and grants, login sessions and throttling, first run, preferences."""
