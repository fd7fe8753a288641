"""attn_agents: placeholder package; see the project README."""
