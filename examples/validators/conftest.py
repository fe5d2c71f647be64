"""The neurons import their siblings (`common`, `fake_chain`) as top-level modules."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
