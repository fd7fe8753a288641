"""`ModelConfig`: the frozen architecture settings of G and D."""

import dataclasses
import pathlib

from attn_core.errors import UserError

ATTENTIONS = ("sagan", "none")
CONFIG_FILE = "model_config.json"


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
        resolution: Image height and width in pixels, a power of two >= 8 (the data is
            resized to it).
        image_channels: 1 (grayscale) or 3 (RGB), from the data.
        num_classes: Classes of a conditional model (class-conditional batch norm in G and
            a projection discriminator); 0 for an unconditional one.
        z_dim: Size of the latent vector z, at least 8.
        g_channels: The generator's width at the output resolution (doubling towards
            4×4, at most 4×), at least 8.
        d_channels: The discriminator's width after its first down-block (doubling
            towards 4×4, at most 4×), at least 8.
        attention: sagan (self-attention blocks in G and D) or none (the SNGAN ablation).
        g_attention_res: Feature-map side where the generator attends, a power of two
            in [4, resolution].
        d_attention_res: Feature-map side where the discriminator attends, a power of two
            in [4, resolution / 2].
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
            raise UserError(
                "Expected `resolution` to be a power of two >= 8 (e.g. 32 or 64). "
                f"Received: resolution={self.resolution}"
            )
        if self.image_channels not in (1, 3):
            raise UserError(
                f"Expected `image_channels` to be 1 or 3. Received: image_channels="
                f"{self.image_channels}"
            )
        for name in ("num_classes",):
            if getattr(self, name) < 0:
                raise UserError(f"Expected `{name}` >= 0. Received: {name}={self.num_classes}")
        for name in ("z_dim", "g_channels", "d_channels"):
            if getattr(self, name) < 8:
                raise UserError(
                    f"Expected `{name}` to be at least 8. Received: {name}={getattr(self, name)}"
                )
        if self.attention not in ATTENTIONS:
            raise UserError(
                f"Expected `attention` to be one of {ATTENTIONS}. "
                f"Received: attention={self.attention!r}"
            )
        if self.attention == "sagan":
            for name, top in (("g_attention_res", self.resolution),
                              ("d_attention_res", self.resolution // 2)):
                value = getattr(self, name)
                if not is_power_of_two(value) or not 4 <= value <= top:
                    raise UserError(
                        f"Expected `{name}` to be a power of two in [4, {top}] at resolution "
                        f"{self.resolution}. Received: {name}={value}"
                    )

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

    def save(self, model_dir) -> pathlib.Path:
        """Writes the config as `<model_dir>/model_config.json`, atomically (another worker
        may be reading it)."""
        from attn_core import model_dir as model_dir_lib

        path = pathlib.Path(model_dir) / CONFIG_FILE
        model_dir_lib.write_json(path, self)
        return path

    @classmethod
    def from_dict(cls, values: dict, where="the saved config") -> "ModelConfig":
        """The config of a `dataclasses.asdict` dict, checked.

        Raises:
            UserError: when `values` has unknown fields or invalid values.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(values, dict) or set(values) - known:
            extra = sorted(set(values) - known) if isinstance(values, dict) else values
            raise UserError(f"Expected the fields of a gan ModelConfig in {where}. "
                            f"Received: {extra!r}")
        return cls(**values)

    @classmethod
    def load(cls, model_dir) -> "ModelConfig":
        """Reads `<model_dir>/model_config.json`.

        Raises:
            FileNotFoundError: if the directory has no config (it holds no trained model).
            UserError: if the file is not a valid config.
        """
        from attn_core import model_dir as model_dir_lib

        path = pathlib.Path(model_dir) / CONFIG_FILE
        values = model_dir_lib.read_json(path, "gan model config")
        if values is None:
            raise FileNotFoundError(
                f"Expected a model directory written by gan.train. Received: model_dir="
                f"{model_dir} (no {CONFIG_FILE})"
            )
        return cls.from_dict(values, str(path))
