"""``python -m obslib`` runs the CLI."""

import sys

from obslib.cli import main

sys.exit(main())
