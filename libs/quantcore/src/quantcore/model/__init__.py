"""Plain typed domain objects and bus events. No I/O here."""
