"""Storage of bytes and secrets: the content-addressed blob folder, key files, the secret box."""
