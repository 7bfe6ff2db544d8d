"""Mail accounts: their settings, Test connection, their status and Error logs."""
