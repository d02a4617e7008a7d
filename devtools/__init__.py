"""Development tools: local runner, PSE sandbox. Not part of the deployed Lambda package."""
