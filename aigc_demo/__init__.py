"""AIGC Demo Studio: three generative-AI demos with a feedback loop.

Layers (data flows one way): ``ui`` → ``services`` → ``models``; every finished
output becomes a record that ``feedback`` stores.
"""

__version__ = "0.1.0"
