"""A short run on a trivially learnable environment improves its return."""

import gymnasium as gym
import numpy as np

from attn_agents.env_config import EnvConfig
from attn_agents.policy_config import PolicyConfig
from attn_agents.ppo_config import PPOConfig
from attn_core.flags import CommonConfig

ENV_ID = "AttnAgentsTest/Sign-v0"


class SignEnv(gym.Env):
    """Ten steps; reward 1 when the action is the sign of the first feature (random each step)."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def _obs(self):
        self.x = self.np_random.uniform(-1, 1, size=3).astype(np.float32)
        return self.x

    def step(self, action):
        reward = float(int(action) == int(self.x[0] > 0))
        self.t += 1
        return self._obs(), reward, False, self.t >= 10, {}


def test_short_run_improves_return(tmp_path):
    if ENV_ID not in gym.registry:
        gym.register(ENV_ID, entry_point=SignEnv)
    from attn_agents.actor_critic import ActorCritic
    from attn_agents.evaluation import evaluate_policy
    from attn_agents.ppo_trainer import train_and_evaluate

    env = EnvConfig(env_id=ENV_ID, num_envs=8)
    policy = PolicyConfig(d_model=16, num_heads=2, ff_dim=16)
    untrained = ActorCritic(policy, SignEnv.observation_space, SignEnv.action_space)
    before, _ = evaluate_policy(untrained, env, 20, seed=5, greedy=False)
    ppo = PPOConfig(total_timesteps=3200, num_steps=20, update_epochs=4, learning_rate=3e-3,
                    gamma=0.5, eval_episodes=20)
    metrics = train_and_evaluate(env, policy, ppo, CommonConfig(seed=1), tmp_path,
                                 log=lambda *_: None, verbose=0)
    assert before.mean() < 7.5
    assert metrics["eval_mean_return"] >= 9.0, metrics
