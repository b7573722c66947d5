"""`python -m app ...` is the `backprop-viz` command."""

import sys

from .cli import main

sys.exit(main())
