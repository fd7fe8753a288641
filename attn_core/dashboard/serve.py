"""`python -m attn_core.dashboard.serve --logdir runs/`: TensorBoard with the Attention tab.

`tensorboard --logdir runs/` shows the tab once this project is installed (its
`tensorboard_plugins` entry point). This launcher shows it from a source checkout that is not
installed, as the browser tests and the screenshot tool do: it runs TensorBoard with its own
plugins plus `AttentionPlugin`, unless the entry point already provides it. Every argument is
TensorBoard's own.
"""

import sys

from attn_core.dashboard.metadata import PLUGIN_NAME


def plugins() -> list:
    """TensorBoard's plugins (static and installed) plus `AttentionPlugin` if not among them."""
    from tensorboard import default

    from attn_core.dashboard.plugin import AttentionPlugin

    loaded = default.get_plugins()
    if not any(getattr(p, "plugin_name", None) == PLUGIN_NAME for p in loaded):
        loaded.append(AttentionPlugin)
    return loaded


def main(argv: list[str]) -> int:
    """Runs TensorBoard until interrupted, as the `tensorboard` command does.

    Args:
        argv: The command line, `argv[0]` being the program name.

    Returns:
        TensorBoard's exit status.
    """
    from tensorboard import main_lib, program

    main_lib.global_init()
    board = program.TensorBoard(plugins=plugins())
    board.configure(argv=argv)
    return board.main()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
