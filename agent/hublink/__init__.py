"""The agent's link to a hub: desired state in (SSE, polling), events and status out."""
