"""Watching deployments and the environment between actions; telling that the agent lives."""
