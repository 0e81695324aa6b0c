"""Makes ``open1panel_ai_amd`` importable from this checkout when the example is not installed,
so these tests run as part of the panel's suite either way."""

import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("open1panel_ai_amd") is None:
    sys.path.insert(0, str(Path(__file__).parent.parent))
