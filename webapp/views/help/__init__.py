"""Help pages served by the app, rendered from the Markdown files in docs/."""
