"""Load and run pretrained models. Knows nothing of Gradio."""
