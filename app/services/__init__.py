"""The service layer: domain orchestration called by the API, the CLI and the maps."""
