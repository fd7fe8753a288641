"""The PPO loss terms: clipped surrogate, clipped value loss, entropy bonus, KL diagnostics."""

import tensorflow as tf


def ppo_loss(new_log_prob, old_log_prob, advantages, new_values, old_values, returns, entropy,
             clip_coef, ent_coef, vf_coef, clip_vloss=True, norm_adv=True, adv_moments=None):
    """CleanRL's PPO objective on one minibatch of M transitions.

    Args:
        new_log_prob: [M], log pi(a|s) under the current parameters.
        old_log_prob: [M], at collection time.
        advantages: [M]; normalized to zero mean and unit std here when `norm_adv`.
        new_values: [M], V(s) now.
        old_values: [M], V(s) at collection time.
        returns: [M], the value targets.
        entropy: [M], the policy's entropy at s.
        clip_coef: Ratio clip epsilon (also the value clip with `clip_vloss`).
        ent_coef: Entropy bonus coefficient.
        vf_coef: Value loss coefficient.
        clip_vloss: Take the max of the plain and the clipped squared value errors.
        norm_adv: Normalize the advantages.
        adv_moments: Optional `(mean, variance)` scalars to normalize the advantages with,
            instead of this minibatch's own: under several replicas, those of the global
            minibatch (`attn_core.worker_sync.global_moments`).

    Returns:
        dict of scalars: `loss` (to minimize), `policy`, `value`, `entropy`, `approx_kl`
        (the (r - 1) - log r estimator) and `clipfrac` (share of ratios clipped).
    """
    log_ratio = new_log_prob - old_log_prob
    ratio = tf.exp(log_ratio)
    approx_kl = tf.reduce_mean((ratio - 1.0) - log_ratio)
    clipfrac = tf.reduce_mean(tf.cast(tf.abs(ratio - 1.0) > clip_coef, tf.float32))
    if norm_adv:
        mean, variance = (tf.nn.moments(advantages, axes=[0]) if adv_moments is None
                          else adv_moments)
        advantages = (advantages - mean) / (tf.sqrt(variance) + 1e-8)
    policy_loss = tf.reduce_mean(tf.maximum(
        -advantages * ratio, -advantages * tf.clip_by_value(ratio, 1 - clip_coef, 1 + clip_coef)))
    unclipped = tf.square(new_values - returns)
    if clip_vloss:
        clipped = old_values + tf.clip_by_value(new_values - old_values, -clip_coef, clip_coef)
        value_loss = 0.5 * tf.reduce_mean(tf.maximum(unclipped, tf.square(clipped - returns)))
    else:
        value_loss = 0.5 * tf.reduce_mean(unclipped)
    entropy_mean = tf.reduce_mean(entropy)
    loss = policy_loss - ent_coef * entropy_mean + vf_coef * value_loss
    return {"loss": loss, "policy": policy_loss, "value": value_loss, "entropy": entropy_mean,
            "approx_kl": approx_kl, "clipfrac": clipfrac}
