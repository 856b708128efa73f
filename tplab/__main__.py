"""`python -m tplab …` is the same as the `tplab` console script."""
import sys

from tplab.cli import main

sys.exit(main())
