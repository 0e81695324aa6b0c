import sys

from open1panel_ai.cli import main

sys.exit(main())
