"""Sources yield raw log lines with where they came from."""
