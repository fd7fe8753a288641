"""What marks a tensor summary as an attention record: the `attention` plugin's metadata."""

from tensorboard.compat.proto import summary_pb2

PLUGIN_NAME = "attention"
# The plugin data's content: the version of the record encoding (attention_record.RECORD_FORMAT
# travels in each record too, so a reader can tell records of different runs apart).
_CONTENT = b"1"


def summary_metadata(description: str = "") -> summary_pb2.SummaryMetadata:
    """The metadata every attention summary carries.

    The data class is TENSOR: TensorBoard's data providers (the Rust data server as well as the
    Python multiplexer) only serve a plugin's tensors when the summary says so.

    Args:
        description: Optional Markdown shown by TensorBoard for the tag.

    Returns:
        A `SummaryMetadata` proto with plugin name "attention".
    """
    metadata = summary_pb2.SummaryMetadata(
        summary_description=description, data_class=summary_pb2.DATA_CLASS_TENSOR)
    metadata.plugin_data.plugin_name = PLUGIN_NAME
    metadata.plugin_data.content = _CONTENT
    return metadata
