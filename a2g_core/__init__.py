"""Act2Goal Lab's core: everything that is not UI (never imports gradio)."""
from pathlib import Path

# the shipped checkpoint that succeeds most: the lab's default policy and every command's
DEFAULT_POLICY = Path("assets/checkpoints/place_empty_cup")   # 0.94 easy, 0.72 hard
