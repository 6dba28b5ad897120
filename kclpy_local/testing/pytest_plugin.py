"""pytest fixtures for users' own processor tests."""
