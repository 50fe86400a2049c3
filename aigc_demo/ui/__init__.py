"""Gradio UI: the Blocks app, one module per tab, one shared rating widget."""
