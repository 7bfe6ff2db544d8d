"""Protocol and vendor adapters: plain typed values in and out, no Flask, no database, no models."""
