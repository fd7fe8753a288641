"""`ModelConfig`: the frozen architecture settings of G and D."""

import dataclasses
import json
import pathlib

ATTENTIONS = ("sagan", "none")


def is_power_of_two(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0 and (
        value & (value - 1) == 0)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The architecture of the generator and the discriminator.

    Widths double from the finest resolution to the coarsest, capped at 4×: at 32 px
    with `g_channels=32`, G's up-blocks output 128 (8×8), 64 (16×16) and 32 (32×32)
    channels; D's down-blocks output 32 (16×16), 64 (8×8), 128 (4×4) and 128 (4×4).

    Attributes:
        resolution: image height and width, a power of two >= 8.
        image_channels: 1 (grayscale) or 3 (RGB).
        num_classes: classes for a conditional model (class-conditional BN in G and a
            projection discriminator); 0 for an unconditional one.
        z_dim: latent size.
        g_channels: G's width at the output resolution.
        d_channels: D's width after its first down-block.
        attention: `"sagan"` (self-attention blocks) or `"none"` (the SNGAN ablation).
        g_attention_res: feature-map side where G attends, a power of two in
            [4, resolution].
        d_attention_res: feature-map side where D attends, a power of two in
            [4, resolution / 2].
    """

    resolution: int = 32
    image_channels: int = 1
    num_classes: int = 0
    z_dim: int = 128
    g_channels: int = 32
    d_channels: int = 32
    attention: str = "sagan"
    g_attention_res: int = 16
    d_attention_res: int = 16

    def __post_init__(self):
        if not is_power_of_two(self.resolution) or self.resolution < 8:
            raise ValueError(
                "Expected `resolution` to be a power of two >= 8 (e.g. 32 or 64). "
                f"Received: resolution={self.resolution}"
            )
        if self.image_channels not in (1, 3):
            raise ValueError(
                f"Expected `image_channels` to be 1 or 3. Received: image_channels="
                f"{self.image_channels}"
            )
        for name in ("num_classes",):
            if getattr(self, name) < 0:
                raise ValueError(f"Expected `{name}` >= 0. Received: {name}={self.num_classes}")
        for name in ("z_dim", "g_channels", "d_channels"):
            if getattr(self, name) < 8:
                raise ValueError(
                    f"Expected `{name}` to be at least 8. Received: {name}={getattr(self, name)}"
                )
        if self.attention not in ATTENTIONS:
            raise ValueError(
                f"Expected `attention` to be one of {ATTENTIONS}. "
                f"Received: attention={self.attention!r}"
            )
        if self.attention == "sagan":
            for name, top in (("g_attention_res", self.resolution),
                              ("d_attention_res", self.resolution // 2)):
                value = getattr(self, name)
                if not is_power_of_two(value) or not 4 <= value <= top:
                    raise ValueError(
                        f"Expected `{name}` to be a power of two in [4, {top}] at resolution "
                        f"{self.resolution}. Received: {name}={value}"
                    )

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

    def save(self, model_dir) -> pathlib.Path:
        """Writes the config as `<model_dir>/model_config.json`, atomically (another worker
        may be reading it)."""
        from attn_core.checkpoint import atomic_write

        path = pathlib.Path(model_dir) / "model_config.json"
        text = json.dumps(dataclasses.asdict(self), indent=2) + "\n"
        atomic_write(path, lambda f: f.write(text.encode()))
        return path

    @classmethod
    def load(cls, model_dir) -> "ModelConfig":
        """Reads `<model_dir>/model_config.json`.

        Raises:
            FileNotFoundError: if the directory has no config (it holds no trained model).
        """
        path = pathlib.Path(model_dir) / "model_config.json"
        if not path.is_file():
            raise FileNotFoundError(
                f"Expected a model directory written by gan.train. Received: model_dir="
                f"{model_dir} (no model_config.json)"
            )
        return cls(**json.loads(path.read_text()))
