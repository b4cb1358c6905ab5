"""`python -m isingaug` runs the same Hydra entry point as the `isingaug` console script."""

from isingaug.cli import main

if __name__ == "__main__":
    main()
