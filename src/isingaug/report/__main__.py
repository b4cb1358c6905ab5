"""`python -m isingaug.report` is the same as the `isingaug-report` console script."""

import sys

from isingaug.report.cli import main

if __name__ == "__main__":
    sys.exit(main())
