"""attn_agents: PPO with attention policies over Gymnasium environments.

The library takes frozen configs (`EnvConfig`, `PolicyConfig`, `PPOConfig`); the absl flags
live only in the entry points `attn_agents.train` and `attn_agents.evaluate`.
"""
