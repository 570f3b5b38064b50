"""``python -m mfgbench``: see mfgbench.cli."""
import sys

from mfgbench.cli import main

sys.exit(main())
