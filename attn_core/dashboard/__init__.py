"""The `attention` TensorBoard plugin: its summary metadata, its HTTP routes and its view.

The view (`static/view.js`, `static/view.css`) is plain JavaScript and CSS with no build step;
`attn_core.attention_record.write_html` inlines the same files, so the TensorBoard tab and the
standalone page draw records the same way. Importing this package imports no web framework:
the trainers only need `metadata`.
"""
