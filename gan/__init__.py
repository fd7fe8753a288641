"""gan: a self-attention GAN (SAGAN) on `attn_core.SelfAttention2D`.

Spectral normalization that stays float32 and passes the gradient through σ, hinge loss,
TTUR, an EMA generator, class-conditional BN with a projection discriminator, offline
FID/KID/precision-recall on a cached domain classifier, and attention maps of where each
generated pixel looks. Entry points: `gan.train`, `gan.train_classifier`, `gan.generate`,
`gan.attention_map`.
"""
