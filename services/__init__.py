"""What the deployment runs besides the `sweep` package: the REST API (services.api) and start scripts."""
