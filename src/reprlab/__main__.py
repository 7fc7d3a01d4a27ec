"""``python -m reprlab`` runs the CLI."""

import sys

from reprlab.cli import main

sys.exit(main())
