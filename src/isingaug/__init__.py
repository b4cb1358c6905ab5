"""isingaug: does augmenting a small data set with generative-model samples improve inverse Ising
inference? One run: dataset -> generator -> augment -> inverse solver -> metrics."""

from isingaug.ising import IsingParams

__all__ = ["IsingParams"]
__version__ = "0.1.0"
